"""An eval suite: a JSONL file of the user's questions, read and checked whole.

Each row: ``{"id", "question" (or "messages"), one scorer field (see scorers.py),
"category"?, "difficulty"?}`` (``prompt`` and ``answer`` are read as ``question`` and
``expected``), as JSON lines or one JSON array (engine/quests/rows.py); a skill row
(``skill`` + ``problem``) carries its own prompt. A row that cannot be scored, or asked, refuses the whole file with its line
number (nothing half-added). Pure Python: `realm evals add` checks a file without torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.evals.scorers import scorer_of, skill_record
from engine.quests.rows import RowError, json_rows

MAX_QUESTIONS = 10_000
SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SuiteError(ValueError):
    """The file is not a suite; the message names the line."""


@dataclass(frozen=True)
class Question:
    id: str
    messages: tuple[dict[str, str], ...]  # what DIO is asked (ends with the user's turn)
    row: dict[str, Any] = field(compare=False)  # the scorer's fields
    scorer: str
    category: str = ""
    difficulty: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    questions: tuple[Question, ...]

    def categories(self) -> list[str]:
        return sorted({q.category for q in self.questions if q.category})


def suite_name(path: Path) -> str:
    name = path.stem
    if not SUITE_NAME.match(name):
        raise SuiteError(f"{path.name}: a suite's file name must be letters, digits, '-', '_' or '.'")
    return name


def read_suite(path: Path) -> Suite:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SuiteError(f"{path.name}: not UTF-8 text") from None
    questions: list[Question] = []
    seen: set[str] = set()
    try:  # rows are checked as they are read: the first problem in the file is the one named
        for number, row in json_rows(text):
            try:
                question = to_question(row, number)
            except ValueError as exc:
                raise SuiteError(f"line {number}: {exc}") from None
            if question.id in seen:
                raise SuiteError(f"line {number}: id {question.id!r} is used twice")
            seen.add(question.id)
            questions.append(question)
            if len(questions) > MAX_QUESTIONS:
                raise SuiteError(f"more than {MAX_QUESTIONS:,} questions: split the file")
    except RowError as exc:
        raise SuiteError(str(exc)) from None
    if not questions:
        raise SuiteError(f"{path.name}: no questions")
    return Suite(suite_name(path), tuple(questions))


def to_question(row: dict[str, Any], number: int) -> Question:
    row = with_aliases(row)
    kind = scorer_of(row)
    qid = str(row.get("id", f"q{number}"))
    if kind == "skill":
        from skills.registry import get_skill

        problem = get_skill(str(row["skill"])).problem_from_record(skill_record(row))
        messages = tuple(problem.messages())
    elif "messages" in row:
        messages = tuple(row["messages"]) if isinstance(row["messages"], list) else ()
        if not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            raise ValueError('"messages" must be a list of {"role", "content"}')
        if messages[-1].get("role") != "user":
            raise ValueError("the last message must be the user's")
    elif isinstance(row.get("question"), str) and row["question"].strip():
        messages = ({"role": "user", "content": row["question"]},)
    else:
        raise ValueError('no "question" (or "messages") to ask')
    return Question(
        qid,
        messages,
        row,
        kind,
        str(row.get("category", "")),
        str(row.get("difficulty", "")),
    )


def with_aliases(row: dict[str, Any]) -> dict[str, Any]:
    """Common question/answer files as they are: ``prompt`` is the question, and an
    ``answer`` (when no scorer is named) is ``expected`` text, or a ``number``."""
    out = dict(row)
    if "question" not in out and "messages" not in out and isinstance(out.get("prompt"), str):
        out["question"] = out["prompt"]
    if "answer" in out and not any(
        key in out for key in ("expected", "keywords", "regex", "number", "skill")
    ):
        answer = out["answer"]
        out["number" if isinstance(answer, (int, float)) and not isinstance(answer, bool) else "expected"] = (
            answer
        )
    return out
