"""History from disk for a Snapshot, so a UI that attaches after a restart sees the past
(chart points and recent log lines). Rows from a timeline lost to a crash (steps after
the loot the engine resumed from) are dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.protocol.savedir import SaveDir

METRICS_TAIL_BYTES = 400_000
EVENTS_TAIL_BYTES = 50_000


def load_history(
    save: SaveDir, resumed_step: int, log_lines: int
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], list[str]]:
    """(train points, validation points, log lines), oldest first."""
    rows: list[dict[str, Any]] = []
    if save.metrics.exists():
        for row in tail_rows(save.metrics, METRICS_TAIL_BYTES):
            if "resumed_from" in row:
                cut = row["resumed_from"]
                rows = [r for r in rows if r.get("step", 0) <= cut]
            elif "step" in row:
                rows.append(row)
    rows = [r for r in rows if r["step"] <= resumed_step]
    train = [(r["step"], r["smoothed"]) for r in rows if "smoothed" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    lines: list[str] = []
    if save.events.exists():
        lines = [row["text"] for row in tail_rows(save.events, EVENTS_TAIL_BYTES)[-log_lines:]]
    return train, val, lines


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
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
