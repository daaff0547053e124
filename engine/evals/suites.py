"""An eval suite: a JSONL file of the user's questions, read and checked whole.

Each row: ``{"id", "question" (or "messages"), one scorer field (see scorers.py),
"category"?, "difficulty"?}``, as JSON lines or one JSON array, compressed or not
(engine/quests/rows.py); a skill row (``skill`` + ``problem``) carries its own prompt.
Question/answer files as they come are read too: ``prompt`` is the question and
``answer`` the expected text (or number), and every prompt/answer pair a quest reads
(engine/quests/format.py's PAIRS: Alpaca, Dolly, question/answer, input/output, …) asks
its prompt and expects its answer, so part of a quest file can be held out as a suite.
Multiple choice (MMLU's ``choices`` + ``answer`` index, MMLU-Pro's ``options``, ARC's
``choices: {text, label}`` + ``answerKey``) asks the question with its lettered choices
and scores the letter (scorers.py, ``choice``). A row that cannot be scored, or asked,
refuses the whole file with its line number (nothing half-added). Pure Python: `realm
evals add` checks a file without torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.evals.scorers import scorer_of, skill_record
from engine.quests.format import PAIRS, QuestRejected, to_spec
from engine.quests.rows import RowError, json_rows, read_user_file, table_hint

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
    """The file's name less its extensions (``math.jsonl.gz`` is the suite ``math``)."""
    name = path.name
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    name = Path(name).stem
    if not SUITE_NAME.match(name):
        raise SuiteError(f"{path.name}: a suite's file name must be letters, digits, '-', '_' or '.'")
    return name


def read_suite(path: Path) -> Suite:
    try:
        return _read_suite(path)
    except SuiteError as exc:
        raise SuiteError(f"{exc}{table_hint(path, str(exc), 'eval suites')}") from None


def _read_suite(path: Path) -> Suite:
    try:
        _, text = read_user_file(path, "eval suite")
    except RowError as exc:
        raise SuiteError(f"{path.name}: {exc}") from None
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


SCORER_KEYS = ("expected", "keywords", "regex", "number", "skill", "choice")
# Question/answer pairs as quests read them, and a completion row's prompt and completion.
ASK_AND_ANSWER = (*PAIRS, ("prompt", "completion", "prompt/completion", None))


def with_aliases(row: dict[str, Any]) -> dict[str, Any]:
    """Common question/answer files as they are: the question under its usual names, and
    (when no scorer is named) the answer as ``expected`` text or a ``number``; multiple
    choice as a ``choice`` row."""
    out = dict(row)
    others = [k for k in SCORER_KEYS if k != "expected"]
    if any(key in out for key in ("choices", "options")) and not any(k in out for k in others):
        return multiple_choice(out)  # "expected", if given, names the right choice
    if is_chat(out) and not any(k in out for k in SCORER_KEYS):
        return held_out_chat(out)
    answer_key = "answer"
    if "question" not in out and "messages" not in out:
        for ask, reply, _shape, extra_key in ASK_AND_ANSWER:
            if isinstance(out.get(ask), str) and reply in out:
                extra = out.get(extra_key) if extra_key else None
                out["question"] = f"{out[ask]}\n\n{extra}" if isinstance(extra, str) and extra else out[ask]
                answer_key = reply
                break
        else:
            if isinstance(out.get("prompt"), str):
                out["question"] = out["prompt"]
    if answer_key in out and not any(key in out for key in SCORER_KEYS):
        answer = out[answer_key]
        out["number" if isinstance(answer, (int, float)) and not isinstance(answer, bool) else "expected"] = (
            answer
        )
    return out


def is_chat(row: dict[str, Any]) -> bool:
    """A quest's chat row: OpenAI messages, ShareGPT, Gemini, or TRL's prompt/completion turns."""
    trl = isinstance(row.get("prompt"), list) and isinstance(row.get("completion"), list)
    return trl or any(key in row for key in ("messages", "conversations", "contents"))


def held_out_chat(row: dict[str, Any]) -> dict[str, Any]:
    """A chat row held out of a quest, as a question: the turns before its last answer are
    asked (read as a quest reads them), and that answer is expected. A chat that ends with
    the user's turn has nothing to expect: give it a scorer."""
    try:
        _, _, normalised = to_spec(row, 0)
    except QuestRejected:
        return row  # not a chat a quest could train on: read as it is (and refused if need be)
    turns = [{"role": m["role"], "content": m["content"]} for m in normalised["messages"]]
    if turns[-1]["role"] != "assistant":
        return row
    return {**row, "messages": turns[:-1], "expected": turns[-1]["content"]}


def multiple_choice(row: dict[str, Any]) -> dict[str, Any]:
    """A multiple-choice row as a ``choice`` row: the question followed by its lettered
    choices, and the label of the right one (its index, label or text in the file)."""
    given = row.get("choices", row.get("options"))
    if isinstance(given, dict) and isinstance(given.get("text"), list):  # ARC: {"text": […], "label": […]}
        texts, labels = given["text"], given.get("label") or [chr(65 + i) for i in range(len(given["text"]))]
    else:
        texts = given if isinstance(given, list) else []
        labels = [chr(65 + i) for i in range(len(texts))]
    if not 2 <= len(texts) <= 26 or len(labels) != len(texts) or not all(isinstance(t, str) for t in texts):
        raise ValueError('"choices" must be a list of 2 to 26 texts (or ARC\'s {"text", "label"})')
    labels = [str(label) for label in labels]
    keys = ("expected", "answerKey", "answer", "answer_index", "label")
    answer = next((row[k] for k in keys if k in row), None)
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(texts):
        right = labels[answer]  # MMLU: the index of the right choice
    elif isinstance(answer, str) and answer.strip() in labels:
        right = answer.strip()
    elif isinstance(answer, str) and answer.strip() in texts:
        right = labels[texts.index(answer.strip())]
    else:
        raise ValueError(
            f"multiple choice needs its answer as an index (0 to {len(texts) - 1}), a label "
            f"({', '.join(labels)}) or a choice's text, not {answer!r}"
        )
    question = row.get("question", row.get("prompt", row.get("query")))
    if not isinstance(question, str) or not question.strip():
        raise ValueError('no "question" to ask with its choices')
    listed = "\n".join(f"{label}. {text}" for label, text in zip(labels, texts, strict=True))
    return {
        **{k: v for k, v in row.items() if k != "expected"},
        "question": f"{question}\n\n{listed}\n\nAnswer with {', '.join(labels[:-1])} or {labels[-1]}.",
        "choice": right,
        "labels": labels,
        "texts": texts,
    }
