"""The retention policy: which loot the vault keeps, and why.

A pure function of the ledger's rows, so `realm vault prune --dry-run`, the Vault
screen's "kept because" column and the engine's pruning after each loot all say the
same thing. A loot is kept when any rule keeps it:

- pinned by the user;
- the loot that ended a campaign phase (a campaign has few; each is a milestone to compare);
- the loot training resumes from (never deleted, whatever the budget);
- the best by validation loss, and by each skill (its level first, then its accuracy:
  60% at level 3 beats 100% at level 1);
- one of the ``keep_last`` newest (any reason: auto, save, quest, stop).

Then the disk budget: while the kept loot weigh more than it, the oldest loot kept
*only* for being recent goes. Pins, phase ends, bests and the resume point are never
deleted for space; when they alone are over the budget, ``over_budget`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.protocol.config import VaultConfig

LOWER_IS_BETTER = ("val_loss", "train_loss")
RESUME = "training resumes from it"
PINNED = "pinned"
PHASE_END = "ended a campaign phase"


@dataclass(frozen=True)
class Verdict:
    name: str
    kept_because: tuple[str, ...]  # empty: it goes
    delete_reason: str = ""


@dataclass(frozen=True)
class Plan:
    verdicts: tuple[Verdict, ...]  # one per live loot, oldest first
    kept_bytes: int
    budget_bytes: int | None
    over_budget: bool  # pins, bests and the resume point alone weigh more than the budget

    @property
    def doomed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.kept_because]

    def kept_because(self, name: str) -> tuple[str, ...]:
        return next((v.kept_because for v in self.verdicts if v.name == name), ())


def skill_metrics(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every skill some loot was evaluated on, sorted."""
    return sorted({skill for row in rows for skill in (row.get("evals") or {})})


def metric_key(row: dict[str, Any], metric: str) -> tuple[float, ...] | None:
    """A sortable key where bigger is better, or None when the loot has no value for
    ``metric``: val_loss / train_loss (lower wins), a skill id ((level, accuracy)), or
    any number recorded in the row's ``metrics``."""
    if metric in LOWER_IS_BETTER:
        value = row.get(metric)
        return None if value is None else (-float(value),)
    evals = row.get("evals") or {}
    if metric in evals:
        result = evals[metric]
        return (float(result.get("level", 0)), float(result["accuracy"]))
    value = (row.get("metrics") or {}).get(metric)
    return None if value is None else (float(value),)


def best(rows: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The best loot by ``metric`` (the newest of equals), or None when none has it."""
    scored = [(key, row["step"], row) for row in rows if (key := metric_key(row, metric)) is not None]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], item[1]))[2]


def _scored_nothing(row: dict[str, Any], metric: str) -> bool:
    """A skill's "best" at 0% is no reason to keep a loot (every loot ties)."""
    result = (row.get("evals") or {}).get(metric)
    return result is not None and float(result["accuracy"]) == 0.0


def _protected(rows: list[dict[str, Any]], resume_name: str | None) -> dict[str, list[str]]:
    """Every loot's reasons to be kept whatever its age or size: a pin, a phase end, the resume point."""
    reasons: dict[str, list[str]] = {row["name"]: [] for row in rows}
    for row in rows:
        if row.get("pinned"):
            reasons[row["name"]].append(PINNED)
        if row.get("reason") == "phase":
            reasons[row["name"]].append(PHASE_END)
    if resume_name in reasons:
        reasons[resume_name].append(RESUME)
    return reasons


def plan(
    rows: list[dict[str, Any]],
    policy: VaultConfig,
    resume_name: str | None,
    budget_bytes: int | None,
) -> Plan:
    """The verdict on each live loot (``rows``: oldest first, each with ``size_bytes``)."""
    reasons = _protected(rows, resume_name)
    if policy.keep_best:
        for metric in ("val_loss", *skill_metrics(rows)):
            winner = best(rows, metric)
            if winner is not None and not _scored_nothing(winner, metric):
                label = "val loss" if metric == "val_loss" else metric
                reasons[winner["name"]].append(f"best {label}")
    # by when it was saved: after a rewind, the set-aside loot of the old line have
    # higher steps but are older than what the new line saves
    by_age = sorted(rows, key=lambda r: (r.get("time", 0), r["step"]))
    recent = [r["name"] for r in by_age[-policy.keep_last :]]
    for name in recent:
        reasons[name].append(f"one of the {policy.keep_last} newest")
    deleted: dict[str, str] = {
        name: f"older than the {policy.keep_last} newest, not pinned, not best"
        for name, why in reasons.items()
        if not why
    }
    size = {row["name"]: int(row.get("size_bytes") or 0) for row in rows}
    kept = sum(size[n] for n in reasons if n not in deleted)
    over = False
    if budget_bytes is not None and kept > budget_bytes:
        for name in recent:  # oldest of the recent first
            if kept <= budget_bytes:
                break
            if reasons[name] == [f"one of the {policy.keep_last} newest"]:
                deleted[name] = f"over the disk budget ({gb(kept)} kept, budget {gb(budget_bytes)})"
                kept -= size[name]
        over = kept > budget_bytes
    verdicts = tuple(
        Verdict(
            row["name"],
            () if row["name"] in deleted else tuple(reasons[row["name"]]),
            deleted.get(row["name"], ""),
        )
        for row in rows
    )
    return Plan(verdicts, kept, budget_bytes, over)


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
