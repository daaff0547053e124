"""Sparring: DIO's wrong answers become training examples (the original system's three).

For each problem DIO got wrong:

1. the problem with DIO's wrong answer, "Is this answer correct?" → "It is incorrect."
2. the problem with the wrong answer, "This answer is incorrect. Find the correct
   solution." → the golden answer;
3. a fresh problem with its golden answer, "Is this correct?" → "It is correct."

So every "It is incorrect." has one "It is correct." beside it: the judgements stay
balanced (DIO cannot learn to just say "incorrect"), and they are two rows in three,
never more. Pure Python: the rows are chat rows of an ordinary quest file.
"""

from __future__ import annotations

import json
from typing import Any

from skills.base import Problem

INCORRECT = "It is incorrect."
CORRECT = "It is correct."
SPLIT = "eval"  # sparring problems come from the eval split, far from the static eval set
FIRST_INDEX = 200_000
MIN_VALID = 0.95  # the share of rows that must survive the checks (as the original system)


def problem_indices(step: int, count: int) -> range:
    """Fresh problems for a sparring round at ``step`` (and as many again for rows 3)."""
    start = FIRST_INDEX + step * 2 * count
    return range(start, start + count)


def proposed(problem: Problem, answer: str, ask: str) -> list[dict[str, str]]:
    turn = f"{problem.prompt}\n\nProposed answer: {answer.strip()}\n\n{ask}"
    system = [{"role": "system", "content": problem.system}] if problem.system else []
    return [*system, {"role": "user", "content": turn}]


def rows_for(wrong: Problem, wrong_answer: str, fresh: Problem) -> list[dict[str, Any]]:
    return [
        {"messages": [*proposed(wrong, wrong_answer, "Is this answer correct?"), _say(INCORRECT)]},
        {
            "messages": [
                *proposed(wrong, wrong_answer, "This answer is incorrect. Find the correct solution."),
                _say(wrong.answer),
            ]
        },
        {"messages": [*proposed(fresh, fresh.answer, "Is this correct?"), _say(CORRECT)]},
    ]


def unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same row twice (a low level repeats problems) is one row: the quest's checks
    would drop the copy anyway, and it must not count against the 95%."""
    seen: set[str] = set()
    out = []
    for row in rows:
        key = json.dumps(row, sort_keys=True, ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _say(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def quest_text(rows: list[dict[str, Any]]) -> str:
    """A quest file: a high-priority header, then the rows (where the mistakes came
    from is in the sidecar the engine keeps beside it)."""
    header = {"quest": {"priority": "high", "epochs": 1}}
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [header, *rows])


def judgement_share(rows: list[dict[str, Any]]) -> float:
    said = [r["messages"][-1]["content"] for r in rows]
    return sum(1 for s in said if s in (INCORRECT, CORRECT)) / max(1, len(said))
