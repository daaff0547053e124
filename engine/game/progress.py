"""Hero progression: XP, level, ATK/DEF/ACC, gold, derived from training numbers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from engine.protocol.messages import HeroStats

GOLD_PER_QUEST = 100  # paid when a quest is finished
GOLD_PER_LEVEL = 50  # paid at each hero level: an idle hero earns too (the Market, game/shop.py)
SMOOTHING = 0.9  # EMA of the train loss (about 10 steps): ATK should not flicker per batch
PACE_SMOOTHING = 0.98  # EMA of a step's seconds (about 50 steps): the ETAs' pace


@dataclass
class Progress:
    step: int = 0
    xp_per_level: int = 1000
    smoothed_loss: float | None = None
    val_loss: float | None = None
    accuracy: float | None = None
    gold: int = 0  # earned over the hero's life; the purse is this minus what the Market took
    tokens_seen: int = 0
    grade: str = ""  # "B 84": the run grade after the latest eval (engine/game/grade.py)
    seconds_trained: float = 0.0  # time spent in training steps, over every session (saved with loot)
    step_seconds: float | None = None  # smoothed seconds per step: the pace of the ETAs

    @property
    def level(self) -> int:
        return self.step // self.xp_per_level

    def record_step(self, loss: float, tokens: int, seconds: float = 0.0) -> bool:
        """Count one optimizer step that took ``seconds``; True when it reached a new level."""
        before = self.level
        self.step += 1
        self.tokens_seen += tokens
        if seconds > 0:
            self.seconds_trained += seconds
            pace = self.step_seconds
            self.step_seconds = (
                seconds if pace is None else PACE_SMOOTHING * pace + (1 - PACE_SMOOTHING) * seconds
            )
        if self.level > before:
            self.gold += GOLD_PER_LEVEL
        if not math.isfinite(loss):
            pass  # a NaN step (the watchdog holds it back) must not poison the average
        elif self.smoothed_loss is None:
            self.smoothed_loss = loss
        else:
            self.smoothed_loss = SMOOTHING * self.smoothed_loss + (1 - SMOOTHING) * loss
        return self.level > before

    def stats(self, spent: int = 0) -> HeroStats:
        """The hero card's numbers; gold is the purse (earned − ``spent`` in the Market)."""
        return HeroStats(
            step=self.step,
            level=self.level,
            xp_per_level=self.xp_per_level,
            atk=1.0 / self.smoothed_loss if self.smoothed_loss else 0.0,
            defense=1.0 / self.val_loss if self.val_loss else 0.0,
            acc=self.accuracy,
            gold=max(0, self.gold - spent),
            train_loss=self.smoothed_loss,
            val_loss=self.val_loss,
            tokens_seen=self.tokens_seen,
            grade=self.grade,
            seconds_trained=self.seconds_trained,
            steps_per_minute=60.0 / self.step_seconds if self.step_seconds else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], xp_per_level: int) -> Progress:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "xp_per_level": xp_per_level})
