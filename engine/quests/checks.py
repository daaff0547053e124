"""Content checks a quest passes before it trains (the intake's schema check is in
engine/quests/format.py). Rows that cannot train well are dropped and reported by line;
a quest with nothing left fails, naming the first problem.

standard (always)   empty answers, longer than the hero's max length, exact duplicates,
                    degenerate repetition, eval contamination (a prompt that is one of a
                    skill's eval problems: never trained on, or the eval lies), and rows
                    the model's chat template refuses to render (a system turn for Gemma's)
deep (when asked)   leakage: an answer that appears verbatim in its own prompt

The cheap two (empty answers, exact duplicates: no tokenizer) also run on arrival
(``first_look``, from engine/quests/queue.py), so a quest's row count is what will train.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.protocol.names import counted
from engine.quests.format import QuestRejected

# A stretch of 1-40 characters repeated 8+ times in a row ("hahahaha…", a looping line).
REPEAT = re.compile(r"(.{1,40}?)\1{7,}", re.DOTALL)
REPEAT_SHARE = 0.5  # degenerate when loops cover half the answer or more
REPEAT_MIN_CHARS = 40
SCAN_CHARS = 20_000  # the repetition scan reads the start of long answers only
SHORT_ANSWER = 4  # shorter answers leak only as a whole word of the prompt


@dataclass
class CheckReport:
    kept: list[int]  # indices of rows that train
    dropped: dict[str, list[int]] = field(default_factory=dict)  # problem -> line numbers
    tokens: int = 0  # tokens in the kept rows (one epoch)

    def notices(self) -> list[str]:
        out = []
        for problem, lines in self.dropped.items():
            shown = ", ".join(str(n) for n in lines[:8]) + (", …" if len(lines) > 8 else "")
            out.append(f"dropped {counted(len(lines), 'row')}, {problem}: line {shown}")
        return out


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()


def prompt_text(row: dict[str, Any]) -> str:
    if "messages" in row:
        return "\n".join(m["content"] for m in row["messages"] if m["role"] != "assistant")
    return str(row.get("prompt", ""))


def answers(row: dict[str, Any]) -> list[str]:
    if "messages" in row:
        return [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    return [str(row.get("completion", row.get("text", "")))]


def last_user_prompt(row: dict[str, Any]) -> str:
    if "messages" in row:
        users = [m["content"] for m in row["messages"] if m["role"] == "user"]
        return users[-1] if users else ""
    return str(row.get("prompt", ""))


def degenerate(text: str) -> bool:
    text = text[:SCAN_CHARS]
    if len(text.strip()) < REPEAT_MIN_CHARS:
        return False
    looped = sum(m.end() - m.start() for m in REPEAT.finditer(text))
    return looped >= REPEAT_SHARE * len(text)


def leaks(row: dict[str, Any]) -> bool:
    prompt = prompt_text(row)
    for answer in answers(row):
        wanted = answer.strip()
        if not wanted:
            continue
        if len(wanted) >= SHORT_ANSWER:
            if wanted in prompt:
                return True
        elif re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", prompt):
            return True
    return False


EMPTY_ANSWER = "an empty answer"
EXACT_DUPLICATE = "an exact duplicate of an earlier row"


def cheap_problem(row: dict[str, Any], seen: set[str]) -> str | None:
    """A problem found without a tokenizer or the skills (an empty answer, an exact
    duplicate of a row in ``seen``, which keeps the rows met so far), or None."""
    if any(not a.strip() for a in answers(row)):
        return EMPTY_ANSWER
    key = json.dumps(row, sort_keys=True, ensure_ascii=False)
    if key in seen:
        return EXACT_DUPLICATE
    seen.add(key)
    return None


def first_look(rows: list[dict[str, Any]], lines: list[int]) -> CheckReport:
    """The cheap checks, on arrival (the inbox, `realm quest add`), so the rows a quest
    reports are the rows that will train, and a file with none is refused at once; the
    same rows are dropped again, with the same notices, when check_rows runs."""
    report = CheckReport(kept=[])
    seen: set[str] = set()
    for i, row in enumerate(rows):
        problem = cheap_problem(row, seen)
        if problem is None:
            report.kept.append(i)
        else:
            report.dropped.setdefault(problem, []).append(lines[i])
    if not report.kept:
        raise nothing_left(report, len(rows))
    return report


def nothing_left(report: CheckReport, rows: int) -> QuestRejected:
    first = min((where[0], problem) for problem, where in report.dropped.items())
    every = f" ({rows} rows, all dropped: " + "; ".join(report.notices()) + ")" if rows > 1 else ""
    return QuestRejected(f"no row can train; line {first[0]}: {first[1]}{every}")


TOO_LONG = "longer than the hero's rows"


def too_long(max_tokens: int, longest: int) -> str:
    return (
        f"longer than the hero's max length of {max_tokens:,} tokens (the longest is {longest:,}; "
        f"`realm config set train.seq_len {longest}` would hold them, if the model's context allows)"
    )


def check_rows(
    rows: list[dict[str, Any]],
    lines: list[int],
    length: Callable[[dict[str, Any]], int],
    max_tokens: int,
    eval_prompts: Iterable[str] = (),
    deep: bool = False,
) -> CheckReport:
    """Which rows train. ``length`` gives a row's rendered tokens; ``eval_prompts`` are
    the skills' eval problems (any form; compared whitespace- and case-insensitively)."""
    contaminated = {normalise(p) for p in eval_prompts}
    report = CheckReport(kept=[])
    seen: set[str] = set()
    longest = 0

    def drop(problem: str, index: int) -> None:
        report.dropped.setdefault(problem, []).append(lines[index])

    for i, row in enumerate(rows):
        problem = cheap_problem(row, seen)
        if problem is not None:
            drop(problem, i)
            continue
        if contaminated and normalise(last_user_prompt(row)) in contaminated:
            drop("a skill's eval problem (eval contamination)", i)
            continue
        if any(degenerate(a) for a in answers(row)):
            drop("degenerate repetition in the answer", i)
            continue
        if deep and leaks(row):
            drop("the answer appears verbatim in its prompt (leakage)", i)
            continue
        try:
            n = length(row)
        except Exception as exc:  # the model's chat template refuses this row (Gemma's: no system turn)
            drop(f"the model's chat template cannot render it ({type(exc).__name__}: {exc})", i)
            continue
        if n > max_tokens:
            drop(TOO_LONG, i)
            longest = max(longest, n)
            continue
        report.kept.append(i)
        report.tokens += n
    if TOO_LONG in report.dropped:  # named once the longest is known: the length that would hold them
        report.dropped[too_long(max_tokens, longest)] = report.dropped.pop(TOO_LONG)
    if not report.kept:
        raise nothing_left(report, len(rows))
    return report
