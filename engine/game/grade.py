"""The run grade: A–F on 100 points, from recorded history (the original system's
supervisor, rebuilt):

    loss convergence      30   the training loss now vs its first steps, or vs a uniform
                               guess if those blew past it (full marks at −50%)
    validation accuracy   30   each skill's latest eval accuracy, averaged
    format correctness    20   the share of eval answers the verifiers could read
    progress consistency  20   evals that did not drop > 20 points at the same level,
                               less 5 per watchdog rollback

A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, F below. Each component comes with one line saying why.
The book is saved with every loot, so a resumed run grades the whole run.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FIRST_STEPS = 50  # the losses a run is compared against
RECENT_STEPS = 50
DROP = 0.2  # an accuracy fall this big at the same level is a setback
ROLLBACK_COST = 5
LETTERS = ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (0, "F"))


@dataclass(frozen=True)
class Part:
    name: str
    points: int
    out_of: int
    why: str


@dataclass(frozen=True)
class Grade:
    letter: str
    score: int
    parts: tuple[Part, ...]

    @property
    def short(self) -> str:
        return f"{self.letter} {self.score}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "score": self.score,
            "parts": [
                {"name": p.name, "points": p.points, "out_of": p.out_of, "why": p.why} for p in self.parts
            ],
        }


def letter_for(score: int) -> str:
    return next(letter for floor, letter in LETTERS if score >= floor)


@dataclass
class GradeBook:
    first: list[float] = field(default_factory=list)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_STEPS))
    steps: int = 0
    evals: int = 0
    drops: int = 0
    latest: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # skill -> level, acc, readable
    # The loss of a uniform guess, ln(vocabulary): a run whose first steps blow up past it
    # is measured from it, not from its own explosion.
    uniform_loss: float = math.inf

    def record_step(self, loss: float) -> None:
        self.steps += 1
        if len(self.first) < FIRST_STEPS:
            self.first.append(loss)
        self.recent.append(loss)

    def record_eval(self, skill: str, level: int, accuracy: float, readable: float) -> None:
        before = self.latest.get(skill)
        self.evals += 1
        if before is not None and before[0] == level and accuracy < before[1] - DROP:
            self.drops += 1
        self.latest[skill] = (level, accuracy, readable)

    def grade(self, rollbacks: int = 0) -> Grade | None:
        """None until there is something to grade (an eval, and twice FIRST_STEPS steps)."""
        if not self.latest or self.steps < 2 * FIRST_STEPS:
            return None
        parts = (self._convergence(), self._accuracy(), self._format(), self._consistency(rollbacks))
        score = sum(p.points for p in parts)
        return Grade(letter_for(score), score, parts)

    def _convergence(self) -> Part:
        own = sum(self.first) / len(self.first)
        first, last = min(own, self.uniform_loss), sum(self.recent) / len(self.recent)
        start = "at the start" if first == own else f"(a uniform guess; the first steps blew up to {own:.3g})"
        if not (math.isfinite(first) and math.isfinite(last)) or first <= 0:
            return Part("loss convergence", 0, 30, "the loss is not a finite number")
        drop = 1 - last / first
        points = round(30 * min(1.0, max(0.0, drop / 0.5)))
        trend = f"{-drop:+.0%}" if drop >= 0 else f"+{-drop:.0%}, rising"
        return Part("loss convergence", points, 30, f"loss {first:.3f} {start} → {last:.3f} now ({trend})")

    def _accuracy(self) -> Part:
        mean = sum(acc for _, acc, _ in self.latest.values()) / len(self.latest)
        said = ", ".join(
            f"{s.upper()} {acc:.0%} (L{lvl})" for s, (lvl, acc, _) in sorted(self.latest.items())
        )
        return Part("validation accuracy", round(30 * mean), 30, f"latest evals: {said}")

    def _format(self) -> Part:
        mean = sum(r for _, _, r in self.latest.values()) / len(self.latest)
        return Part(
            "format correctness", round(20 * mean), 20, f"{mean:.0%} of the latest eval answers were readable"
        )

    def _consistency(self, rollbacks: int) -> Part:
        steady = 1 - self.drops / max(1, self.evals)
        points = max(0, round(20 * steady) - ROLLBACK_COST * rollbacks)
        why = f"{self.drops} setback{'s' * (self.drops != 1)} in {self.evals} evals"
        return Part(
            "progress consistency",
            points,
            20,
            f"{why}, {rollbacks} watchdog rollback{'s' * (rollbacks != 1)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "recent": list(self.recent),
            "steps": self.steps,
            "evals": self.evals,
            "drops": self.drops,
            "latest": {k: list(v) for k, v in self.latest.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GradeBook:
        data = data or {}
        book = cls(
            first=[float(x) for x in data.get("first", [])],
            steps=int(data.get("steps", 0)),
            evals=int(data.get("evals", 0)),
            drops=int(data.get("drops", 0)),
            latest={k: (int(v[0]), float(v[1]), float(v[2])) for k, v in data.get("latest", {}).items()},
        )
        book.recent.extend(float(x) for x in data.get("recent", []))
        return book
