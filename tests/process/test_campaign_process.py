"""A campaign on a real engine process: started through the socket by `realm campaign
start`, a phase change, a kill -9 in the second phase, and a restart that resumes in that
phase at its row and makes the same decisions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tests.conftest import ROOT, after_last_resume, last_step, losses, make_hero, realm, wait_until

pytestmark = pytest.mark.slow

# Phase 2 is long so the kill lands inside it: the test's hatchling trains so fast that, with
# 40 steps, the metrics were once first seen past a loot in phase 2 only at its very end, and the
# resumed run finished the campaign ("complete" instead of "phase 2/2").
CAMPAIGN = """\
name: two
phases:
  - name: general
    skills: {bin: 1}
    steps: 12
  - name: special
    skills: {sy: 1}
    steps: 400
    lr: 1.0e-3
    rehearsal: 0.25
"""


def campaign_status(save_root: Path) -> dict:  # type: ignore[type-arg]
    status = json.loads((save_root / "hero.json").read_text()) if (save_root / "hero.json").exists() else {}
    return status.get("campaign") or {}


def test_campaign_started_online_survives_kill_9(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    config = replace(config, train=replace(config.train, seq_len=256))
    save.config.write_text(json.dumps(asdict(config)))
    file = tmp_path / "two.yaml"
    file.write_text(CAMPAIGN)
    saves = str(save.root.parent)
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root), "--checkpoint-every", "10"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: last_step(save.metrics) >= 3, what="a few steps")
        started = realm("campaign", "start", str(file), "--saves", saves)
        assert started.returncode == 0, started.stderr
        assert "phase 1 (general, 12 steps) begins at step" in started.stdout
        began = json.loads(save.campaign.read_text())
        assert began["campaign"]["name"] == "two"
        wait_until(lambda: campaign_status(save.root).get("current") == 1, what="the second phase")
        start2 = campaign_status(save.root)["phases"][1]["start_step"]
        wait_until(lambda: last_step(save.metrics) >= start2 + 13 and last_step(save.metrics) % 10 >= 3,
                   what="steps past a loot in phase 2")  # fmt: skip
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    before = losses(save.metrics)
    killed_at = max(before)
    subprocess.run(
        [*cmd, "--max-steps", str(killed_at + 2)], cwd=ROOT, check=True, timeout=300, capture_output=True
    )
    resumed_from, after = after_last_resume(save.metrics)
    assert start2 < resumed_from < killed_at
    replayed = range(resumed_from + 1, killed_at + 1)
    assert [after[s] for s in replayed] == [before[s] for s in replayed]  # same row, same mix, same lr
    status = campaign_status(save.root)
    assert status["current"] == 1 and status["phases"][1]["start_step"] == start2
    summary = realm("status", "--saves", saves)
    assert "campaign two: phase 2/2 special" in summary.stdout, summary.stdout.splitlines()
    shown = realm("campaign", "status", "--saves", saves)
    assert shown.returncode == 0 and "▶ 2. special" in shown.stdout and "✓ 1. general" in shown.stdout
