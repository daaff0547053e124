"""The curriculum: which skill levels DIO trains on, and the one progression rule.

THE RULE (defined here and nowhere else): a skill advances when its last
``GATE_WINDOW`` evals at its current level all reach the threshold in its YAML.
Its state (level and the evals at that level) is saved with every checkpoint, so it
survives restarts and replays exactly after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.train.stream import Source
from skills.base import Skill

GATE_WINDOW = 3
REHEARSAL_LEVELS = 5  # rehearse at most this many levels below the current one
HISTORY = 50  # evals kept per level (the gate reads 3; the Guild's sparkline the rest)


def gate_passed(accuracies: list[float], threshold: float, window: int = GATE_WINDOW) -> bool:
    recent = accuracies[-window:]
    return len(recent) == window and all(a >= threshold for a in recent)


def gate_progress(accuracies: list[float], threshold: float, window: int = GATE_WINDOW) -> int:
    """How many of the last ``window`` evals passed (for "2 of 3 evals ≥ 80%")."""
    return sum(1 for a in accuracies[-window:] if a >= threshold)


@dataclass
class Track:
    """One skill's place in the curriculum."""

    level: int = 1
    evals: list[float] = field(default_factory=list)  # accuracies at `level`, oldest first
    mastered: dict[int, int] = field(default_factory=dict)  # level -> step it was passed


class Curriculum:
    def __init__(
        self,
        skills: list[Skill],
        weights: dict[str, float],
        rehearsal: float,
        caps: dict[str, int] | None = None,
    ) -> None:
        if not skills:
            raise ValueError("the curriculum needs at least one skill")
        if not 0 <= rehearsal < 1:
            raise ValueError("rehearsal must be in [0, 1)")
        self.skills = {s.id: s for s in skills}
        self.weights = weights
        self.rehearsal = rehearsal
        self.tracks = {s.id: Track() for s in skills}
        # Skills out of the mix (weight 0, a user skill that will not load): their saved
        # rows ride along with every checkpoint, so putting one back resumes its level.
        self.benched: dict[str, dict[str, Any]] = {}
        # The highest level each skill may reach: its last level whose examples fit a row.
        self.caps = {s.id: min(s.max_level, (caps or {}).get(s.id, s.max_level)) for s in skills}

    def sources(self) -> list[Source]:
        """Mostly the current level of each skill, plus a rehearsal share of lower ones.
        A skill without a weight is tracked and evaluated but not trained (a campaign
        phase that leaves it out)."""
        out = []
        for skill_id, track in self.tracks.items():
            skill, weight = self.skills[skill_id], self.weights.get(skill_id, 0.0)
            if weight <= 0:
                continue
            lower = list(range(max(1, track.level - REHEARSAL_LEVELS), track.level))
            share = self.rehearsal if lower else 0.0
            out.append(Source(skill, track.level, weight * (1 - share)))
            out.extend(Source(skill, lvl, weight * share / len(lower)) for lvl in lower)
        return out

    def record_eval(self, skill_id: str, accuracy: float, step: int) -> int | None:
        """Add an eval result; returns the new level when the gate opens."""
        track = self.tracks[skill_id]
        skill = self.skills[skill_id]
        track.evals = [*track.evals, accuracy][-HISTORY:]
        if track.level >= self.caps[skill_id] or not gate_passed(track.evals, skill.spec.threshold):
            return None
        track.mastered[track.level] = step
        track.level += 1
        track.evals = []
        return track.level

    def held_at_cap(self, skill_id: str) -> bool:
        """The gate is passed but the skill's next level does not fit a row (train/fit.py)."""
        track, skill = self.tracks[skill_id], self.skills[skill_id]
        capped = track.level >= self.caps[skill_id] and track.level < skill.max_level
        return capped and gate_passed(track.evals, skill.spec.threshold)

    def to_dict(self) -> dict[str, Any]:
        tracked = {
            sid: {"level": t.level, "evals": t.evals, "mastered": {str(k): v for k, v in t.mastered.items()}}
            for sid, t in self.tracks.items()
        }
        return {**self.benched, **tracked}

    def load(self, data: dict[str, Any]) -> None:
        for sid, row in data.items():
            if sid not in self.tracks:
                self.benched[sid] = row
            else:
                level = min(int(row["level"]), self.skills[sid].max_level)
                mastered = {int(k): int(v) for k, v in row.get("mastered", {}).items()}
                self.tracks[sid] = Track(level, list(row.get("evals", [])), mastered)
