"""Scorers for a user's eval suite: each turns (question row, DIO's answer) into 0..1.

- exact: the answer equals ``expected`` (trimmed, case-insensitive) → 1 else 0;
- keywords: the share of ``keywords`` found in the answer, case-insensitive (0.0–1.0,
  as the original system scored);
- regex: ``regex`` matches somewhere in the answer → 1 else 0;
- number: the last number in the answer is within ``tolerance`` (absolute, default
  1e-6, or ``rel_tolerance``) of ``number`` → 1 else 0;
- skill: a skill problem (``skill`` + ``problem``: a reference eval record; or a line of
  `realm skills sample --json` as it is) scored by that skill's verifier;
- choice: multiple choice (engine/evals/suites.py lists the choices in the question): the
  label the answer gives (``B``, ``B.``, ``(B) …``, "the answer is B") or the text of a
  choice it repeats whole is ``choice`` → 1 else 0.

A row names exactly one way to be scored; ``scorer_of`` says which (or why none).
"""

from __future__ import annotations

import math
import re
from typing import Any

SCORERS = ("exact", "keywords", "regex", "number", "skill", "choice")
NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


def scorer_of(row: dict[str, Any]) -> str:
    """The one scorer a row asks for; ValueError says what is wrong."""
    present = [name for name, key in (("exact", "expected"), ("keywords", "keywords"), ("regex", "regex"),
                                      ("number", "number"), ("skill", "skill"), ("choice", "choice")) if key in row]  # fmt: skip
    if not present:
        raise ValueError(
            'no way to score it: give "expected" (or "answer"), "keywords", "regex", "number" or "skill"'
        )
    if len(present) > 1:
        raise ValueError(f"more than one scorer ({', '.join(present)}): keep one")
    kind = present[0]
    if kind == "keywords" and (
        not isinstance(row["keywords"], list) or not row["keywords"] or not all(isinstance(k, str) and k.strip() for k in row["keywords"])
    ):  # fmt: skip
        raise ValueError('"keywords" must be a non-empty list of words')
    if kind == "regex":
        try:
            re.compile(str(row["regex"]))
        except re.error as exc:
            raise ValueError(f'"regex" does not compile: {exc}') from None
    if kind == "number" and not _is_number(row["number"]):
        raise ValueError('"number" must be a number')
    if kind == "exact" and not isinstance(row["expected"], str):
        raise ValueError('"expected" must be text')
    if kind == "exact" and not row["expected"].strip():
        raise ValueError('"expected" is empty: no answer could be scored right')
    if kind == "skill":
        from skills.registry import get_skill

        try:
            skill = get_skill(str(row["skill"]))
            skill.problem_from_record(skill_record(row))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"not a problem of skill {row.get('skill')!r}: {exc}") from None
    return kind


def skill_record(row: dict[str, Any]) -> Any:
    """A skill row's problem: under "problem", or the row itself (a line of
    `realm skills sample --json` is already a problem record)."""
    return row.get("problem", row)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def last_number(text: str) -> float | None:
    found = NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))  # 1,234.5 → 1234.5
    except ValueError:
        return None


def score(row: dict[str, Any], answer: str, kind: str | None = None) -> float:
    kind = kind or scorer_of(row)
    text = answer.strip()
    if kind == "exact":
        return float(text.lower() == str(row["expected"]).strip().lower())
    if kind == "keywords":
        words = [k.lower() for k in row["keywords"]]
        lowered = text.lower()
        return sum(1 for w in words if w in lowered) / len(words)
    if kind == "regex":
        return float(re.search(str(row["regex"]), text) is not None)
    if kind == "number":
        got = last_number(text)
        if got is None:
            return 0.0
        want = float(row["number"])
        tolerance = float(row.get("tolerance", 1e-6))
        rel = float(row.get("rel_tolerance", 0.0))
        return float(abs(got - want) <= max(tolerance, rel * abs(want)))
    if kind == "skill":
        from skills.registry import get_skill

        skill = get_skill(str(row["skill"]))
        return float(skill.score(skill.problem_from_record(skill_record(row)), answer))
    if kind == "choice":
        return float(chosen(text, row.get("labels", []), row.get("texts", [])) == row["choice"])
    raise ValueError(f"unknown scorer {kind!r}")


def chosen(answer: str, labels: list[str], texts: list[str]) -> str | None:
    """The label an answer picks: the label alone or leading with its punctuation ("B",
    "B.", "(B) Paris", "B: Paris"; not "A cat", where A is a word), the label after
    "answer is", or a choice's whole text; None when it picks none."""
    pick = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    if not pick:
        return None
    text = answer.strip()
    for pattern in (rf"^\(?({pick})(?:\)|[.:,]|$)", rf"(?i:answer)(?: is)?\s*:?\s*\(?({pick})(?![\w])"):
        found = re.search(pattern, text)
        if found:
            return found.group(1)
    lowered = text.rstrip(".").lower()
    return next(
        (label for label, choice in zip(labels, texts, strict=False) if choice.strip().lower() == lowered),
        None,
    )
