"""The watchdog: judges every optimizer step before it is applied.

- **Spike** (OLMo-core's rule): the step's loss (and, when ``grad_norm_sigmas`` is set,
  its gradient norm) is more than ``spike_sigmas`` σ above the mean of the last ``window``
  accepted steps → ``skip``: no update, the data is still consumed.
- **NaN/Inf** loss or gradient norm, or ``spikes_to_rollback`` skips within the window →
  ``rollback``: the worker goes back to the newest loot, multiplies the learning rate by
  ``lr_factor``, reshuffles the data (a new seed) and goes on (``engine/run/guard.py``).

Pure Python and deterministic: its whole state (history, recent skips, the learning-rate
scale, the data-seed shift, the interventions) is saved with every loot, so a resumed run
makes the same decisions. History restarts whenever the data changes on purpose (a skill
level-up, a quest starting or ending): a new level's first losses are news, not a spike.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from engine.protocol.config import WatchdogConfig

OK, SKIP, ROLLBACK = "ok", "skip", "rollback"


@dataclass(frozen=True)
class Verdict:
    action: str  # ok | skip | rollback
    reason: str = ""


def _mean_std(values: deque[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


@dataclass
class Watchdog:
    cfg: WatchdogConfig
    losses: deque[float] = field(default_factory=deque)
    norms: deque[float] = field(default_factory=deque)
    skipped: list[int] = field(default_factory=list)  # steps skipped as spikes, recent first out
    rollbacks: list[int] = field(default_factory=list)  # steps at which a rollback happened
    lr_scale: float = 1.0
    seed_shift: int = 0  # the data stream's seed moves by this many notches (reshuffles)

    def judge(self, step: int, loss: float, grad_norm: float) -> Verdict:
        """Decide about step ``step`` (1-based, the step being taken) before its update."""
        if not self.cfg.enabled:
            return Verdict(OK)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            return Verdict(
                ROLLBACK, f"{'loss' if not math.isfinite(loss) else 'gradient norm'} is not a number"
            )
        if len(self.losses) >= self.cfg.min_history:
            reason = self._spike(loss, grad_norm)
            if reason:
                self.skipped = [s for s in self.skipped if s > step - self.cfg.window] + [step]
                if len(self.skipped) >= self.cfg.spikes_to_rollback:
                    return Verdict(
                        ROLLBACK, f"{len(self.skipped)} spikes in {self.cfg.window} steps ({reason})"
                    )
                return Verdict(SKIP, reason)
        self.losses.append(loss)
        self.norms.append(grad_norm)
        while len(self.losses) > self.cfg.window:
            self.losses.popleft()
            self.norms.popleft()
        return Verdict(OK)

    def _spike(self, loss: float, grad_norm: float) -> str:
        tests = [("loss", loss, self.losses, self.cfg.spike_sigmas)]
        if self.cfg.grad_norm_sigmas:
            tests.append(("gradient norm", grad_norm, self.norms, self.cfg.grad_norm_sigmas))
        for name, value, history, sigmas in tests:
            mean, std = _mean_std(history)
            limit = mean + sigmas * max(std, 1e-3 * abs(mean), 1e-8)
            if value > limit:
                return f"{name} {value:.4g} > {limit:.4g} (mean {mean:.4g} + {sigmas:g}σ)"
        return ""

    def forget_history(self) -> None:
        """The data changed on purpose: judge the new data against itself."""
        self.losses.clear()
        self.norms.clear()
        self.skipped = []

    def rollbacks_in_window(self, step: int) -> int:
        return sum(1 for s in self.rollbacks if s > step - self.cfg.intervention_window)

    def may_roll_back(self, step: int) -> bool:
        return self.rollbacks_in_window(step) < self.cfg.max_interventions

    def rolled_back(self, step: int) -> None:
        """The state the run continues with after a rollback taken at ``step``."""
        self.rollbacks.append(step)
        self.lr_scale *= self.cfg.lr_factor
        self.seed_shift += 1
        self.forget_history()

    def to_dict(self) -> dict[str, Any]:
        return {
            "losses": list(self.losses),
            "norms": list(self.norms),
            "skipped": self.skipped,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "seed_shift": self.seed_shift,
        }

    @classmethod
    def from_dict(cls, cfg: WatchdogConfig, data: dict[str, Any] | None) -> Watchdog:
        data = data or {}
        return cls(
            cfg,
            deque(float(x) for x in data.get("losses", [])),
            deque(float(x) for x in data.get("norms", [])),
            [int(x) for x in data.get("skipped", [])],
            [int(x) for x in data.get("rollbacks", [])],
            float(data.get("lr_scale", 1.0)),
            int(data.get("seed_shift", 0)),
        )


SEED_NOTCH = 1_000_003  # a rollback's new data seed: seed + shift × this


def gap_word(gap: float) -> str:
    """The original system's reading of the train/validation loss gap."""
    return "fine" if gap < 0.3 else "watch" if gap < 0.5 else "overfitting"


def overfitting(history: list[tuple[int, float, float]], evals: int) -> str:
    """A report when validation loss rose over the last ``evals`` evals while training loss
    fell and the train/val gap is not "fine" (< 0.3) (``history``: (step, train loss, val loss) on one validation set), else ""."""
    if evals < 2 or len(history) < evals:
        return ""
    recent = history[-evals:]
    val_rising = all(b[2] > a[2] for a, b in pairwise(recent))
    train_falling = recent[-1][1] < recent[0][1]
    if not (val_rising and train_falling):
        return ""
    gap = recent[-1][2] - recent[-1][1]
    if gap_word(gap) == "fine":  # val loss drifting up a hair below the train loss is noise
        return ""
    return (
        f"validation loss rose {evals} evals in a row ({recent[0][2]:.3f} → {recent[-1][2]:.3f}, steps "
        f"{recent[0][0]:,}–{recent[-1][0]:,}) while training loss fell; train/val gap {gap:.2f} "
        f"({gap_word(gap)}): memorising, perhaps; a lower train.lr, more game.rehearsal, or the "
        f"Vault's best-val loot (v) would help"
    )
