"""`realm config set` against a real engine process: the change goes through the socket,
the engine writes config.json and the next steps train at the new learning rate; the log
book (events.jsonl) records it with its kind and step."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ROOT, last_step, make_hero, realm, wait_until

pytestmark = pytest.mark.slow


def test_realm_config_set_reaches_a_running_engine(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    config = replace(config, train=replace(config.train, schedule="constant", warmup_steps=0))
    save.config.write_text(config.to_json())
    saves = str(save.root.parent)
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root)]
    engine = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: last_step(save.metrics) >= 3, what="a few steps")
        refused = realm("config", "set", "train.lr", "1.5", "--saves", saves)
        assert refused.returncode == 1 and "lr must be in (0, 1)" in refused.stderr
        done = realm("config", "set", "train.lr", "4e-4", "--saves", saves)
        assert done.returncode == 0, done.stderr
        assert "train.lr: 0.003 → 0.0004 (from the next step)" in done.stdout
        assert json.loads(save.config.read_text())["train"]["lr"] == 4e-4
        changed_at = last_step(save.metrics)
        wait_until(lambda: last_step(save.metrics) >= changed_at + 3, what="steps after the change")
        rows = [json.loads(line) for line in save.metrics.read_text().splitlines()]
        lrs = [r["lr"] for r in rows if "lr" in r and r["step"] > changed_at + 1]
        assert lrs and all(lr == pytest.approx(4e-4) for lr in lrs)
        noted = [json.loads(line) for line in save.events.read_text().splitlines()]
        setting = next(r for r in noted if "train.lr: 0.003 → 0.0004" in r["text"])
        assert setting["kind"] == "run" and setting["step"] >= 3
    finally:
        realm("stop", "--saves", saves)
        engine.wait(60)
