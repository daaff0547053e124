"""History from metrics.jsonl for a UI that attaches later: a timeline lost to a crash is
dropped, a torn last line is skipped, and a step with no gradient norm (an fp16 overflow)
leaves the norm chart alone."""

from __future__ import annotations

import json
from pathlib import Path

from engine.protocol.savedir import SaveDir
from engine.store.history import load_history


def test_history_keeps_the_timeline_resumed_from_and_skips_missing_norms(tmp_path: Path) -> None:
    save = SaveDir(tmp_path / "hero")
    save.create()
    rows = [
        {"step": 1, "loss": 3.0, "smoothed": 3.0, "lr": 1e-3, "grad_norm": None},  # fp16 overflow
        {"step": 2, "loss": 2.0, "smoothed": 2.5, "lr": 1e-3, "grad_norm": 4.0},
        {"step": 3, "loss": 1.0, "smoothed": 2.0, "lr": 1e-3, "grad_norm": 3.0},  # lost: crash
        {"resumed_from": 2, "time": 0.0},
        {"step": 3, "loss": 1.5, "smoothed": 2.2, "lr": 1e-3, "grad_norm": 2.0},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "lo'  # torn by a kill -9
    save.metrics.write_text(text)
    history = load_history(save, resumed_step=3, log_lines=10)
    assert history.train == [(1, 3.0), (2, 2.5), (3, 2.2)]
    assert history.grad_norm == [(2, 4.0), (3, 2.0)]
    assert history.lr == [(1, 1e-3), (2, 1e-3), (3, 1e-3)]
