"""History from disk for a Snapshot, so a UI that attaches after a restart sees the past
(chart points, the learning rate and gradient norm, each skill's evals, recent log lines). Rows from a timeline lost to a crash (steps after
the loot the engine resumed from) are dropped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir

METRICS_TAIL_BYTES = 400_000
EVENTS_TAIL_BYTES = 50_000


@dataclass
class History:
    """What metrics.jsonl and events.jsonl remember, oldest first."""

    train: list[tuple[int, float]] = field(default_factory=list)  # (step, smoothed loss)
    val: list[tuple[int, float]] = field(default_factory=list)
    lr: list[tuple[int, float]] = field(default_factory=list)
    grad_norm: list[tuple[int, float]] = field(default_factory=list)
    skills: list[p.SkillPoint] = field(default_factory=list)  # each skill at each eval
    lines: list[str] = field(default_factory=list)


def load_history(save: SaveDir, resumed_step: int, log_lines: int) -> History:
    rows: list[dict[str, Any]] = []
    if save.metrics.exists():
        for row in tail_rows(save.metrics, METRICS_TAIL_BYTES):
            if "resumed_from" in row:
                cut = row["resumed_from"]
                rows = [r for r in rows if r.get("step", 0) <= cut]
            elif "step" in row:
                rows.append(row)
    rows = [r for r in rows if r["step"] <= resumed_step]
    out = History(
        train=[(r["step"], r["smoothed"]) for r in rows if "smoothed" in r],
        val=[(r["step"], r["val_loss"]) for r in rows if "val_loss" in r],
        lr=[(r["step"], r["lr"]) for r in rows if "lr" in r],
        # None: an fp16 overflow's skipped step, which has no norm
        grad_norm=[(r["step"], r["grad_norm"]) for r in rows if r.get("grad_norm") is not None],
    )
    for r in rows:
        levels = r.get("levels") or {}
        for skill, accuracy in (r.get("skills") or {}).items():
            out.skills.append(p.SkillPoint(r["step"], skill, int(levels.get(skill, 0)), float(accuracy)))
    if save.events.exists():
        out.lines = [row["text"] for row in tail_rows(save.events, EVENTS_TAIL_BYTES)[-log_lines:]]
    return out


def tail_rows(path: Path, max_bytes: int) -> list[dict[str, Any]]:
    """The JSON rows at the end of a .jsonl file. A kill -9 can leave a half-written
    last line; it is skipped rather than failing the start."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size > max_bytes:
            f.seek(size - max_bytes)
            f.readline()  # drop the partial first line
        data = f.read().decode("utf-8", errors="replace")
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):  # a line edited by hand into a number or a list: skipped too
            rows.append(row)
    return rows
