"""Real processes: the engine as `python -m engine` and `realm train`, a real Unix
socket, a real `kill -9`, and `realm status --json` read from another process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine import protocol as p
from tests.conftest import ROOT, make_hero
from tests.test_resume import losses
from tui.launcher import Hero


def realm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def wait_until(predicate: Any, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def live_loot(ledger: Path) -> set[str]:
    """Loot the ledger says exists (pruned rows stay in the ledger, flagged deleted)."""
    return {r["name"] for r in json.loads(ledger.read_text())["loot"].values() if not r["deleted"]}


def last_step(metrics: Path) -> int:
    steps = losses(metrics) if metrics.exists() else {}
    return max(steps, default=0)


def test_kill_9_then_resume_loses_nothing(tmp_path: Path, hatchling_dir: Path) -> None:
    save, _ = make_hero(tmp_path, hatchling_dir)
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root), "--checkpoint-every", "10"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ledger = save.ledger
        wait_until(
            lambda: ledger.exists() and len(json.loads(ledger.read_text())["loot"]) >= 2, what="two loot"
        )
        wait_until(lambda: last_step(save.metrics) % 10 >= 3, what="steps past the loot")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    before = losses(save.metrics)
    killed_at = max(before)
    loot_before = live_loot(save.ledger)
    assert Hero(save.root).engine_pid() is None  # the stale pid file is recognised as dead
    assert save.pid.exists()
    # Restart: resumes from the newest loot and re-trains the lost steps identically.
    subprocess.run(
        [*cmd, "--max-steps", str(killed_at + 5)], cwd=ROOT, check=True, timeout=300, capture_output=True
    )
    rows = [json.loads(line) for line in save.metrics.read_text().splitlines()]
    resumed_from = [r["resumed_from"] for r in rows if "resumed_from" in r][-1]
    assert resumed_from == max(int(n.split("-")[1]) for n in loot_before)
    assert resumed_from < killed_at
    after: dict[int, float] = {}
    for row in rows[[i for i, r in enumerate(rows) if r.get("resumed_from") == resumed_from][-1] :]:
        if "loss" in row:
            after[row["step"]] = row["loss"]
    replayed = range(resumed_from + 1, killed_at + 1)
    assert [after[s] for s in replayed] == [before[s] for s in replayed]
    loot_after = live_loot(save.ledger)
    assert loot_before <= loot_after  # no checkpoint lost
    missing = [n for n in loot_before if not (save.checkpoints / n / "model.safetensors").exists()]
    assert not missing, (missing, sorted(p.name for p in save.checkpoints.iterdir()), save.ledger.read_text())
    assert not save.pid.exists()


def test_realm_train_status_socket_and_stop(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = tmp_path / "saves"
    save, _ = make_hero(saves, hatchling_dir)
    args = ["--saves", str(saves)]
    train = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "train", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def status() -> dict[str, Any]:
            return dict(json.loads(realm("status", "--json", *args).stdout))

        wait_until(lambda: status()["step"] > 0, what="the first status with steps")
        live = status()
        assert live["state"] == "training" and live["pid"] == train.pid  # execv: same pid
        assert {"state", "step", "loss", "level", "last_loot_step", "pid"} <= set(live)

        # The real socket: handshake, pause, resume.
        hero = Hero(save.root)
        conn = hero.connect()
        conn.send(p.Hello())
        events = [conn.recv()]
        assert isinstance(events[0], p.Snapshot) and events[0].pid == train.pid
        conn.send(p.Pause())
        while not isinstance(events[-1], p.Paused):
            events.append(conn.recv())
        wait_until(lambda: status()["state"] == "paused", what="paused status")
        conn.send(p.Resume())
        conn.close()
        wait_until(lambda: status()["state"] == "training", what="training again")

        stopped = realm("stop", *args, timeout=300)
        assert stopped.returncode == 0, stopped.stderr
        out, _ = train.communicate(timeout=60)
    finally:
        train.kill()
    assert train.returncode == 0
    assert "step" in out and "loss" in out  # progress lines were printed
    final = status()
    assert final["state"] == "stopped" and final["pid"] is None
    assert final["last_loot_step"] == final["step"] > 0
    human = realm("status", *args).stdout
    assert "stopped" in human and f"last loot at step {final['step']:,}" in human


def test_second_engine_for_the_same_hero_is_refused(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = tmp_path / "saves"
    save, _ = make_hero(saves, hatchling_dir)
    first = subprocess.Popen(
        [sys.executable, "-m", "engine", "--save-dir", str(save.root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: Hero(save.root).engine_pid() == first.pid, what="the first engine")
        second = subprocess.run(
            [sys.executable, "-m", "engine", "--save-dir", str(save.root)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3 and "already running" in second.stderr
        refused = realm("train", "--saves", str(saves))
        assert refused.returncode == 3 and "already training" in refused.stderr
    finally:
        first.send_signal(signal.SIGINT)  # what Ctrl+C on `realm train` sends
        first.wait(120)
    assert first.returncode == 0  # saved and stopped cleanly
    assert Hero(save.root).read_status()["state"] == "stopped"


def test_train_any_local_model_folder(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = str(tmp_path / "saves")
    missing = realm("train", "--saves", saves, "--hero", "other", "--model", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no such folder" in missing.stderr
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    refused = realm("train", "--saves", saves, "--hero", "other", "--model", str(not_a_model))
    assert refused.returncode != 0 and "no config.json" in refused.stderr
    # The session's hatchling folder stands in for any local Hugging Face model.
    done = realm("train", "--saves", saves, "--hero", "own", "--model", str(hatchling_dir),
                 "--max-steps", "3", "--threads", "1", timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = json.loads(realm("status", "--json", "--saves", saves, "--hero", "own").stdout)
    assert status["state"] == "stopped" and status["step"] == 3 and status["last_loot_step"] == 3
    assert status["model"] == str(hatchling_dir.resolve())
    assert not (tmp_path / "saves" / "own" / "base").exists()  # trained from the given folder
    other = tmp_path / "other-model"
    shutil.copytree(hatchling_dir, other)
    switch = realm("train", "--saves", saves, "--hero", "own", "--model", str(other))
    assert switch.returncode != 0 and "already trains" in switch.stderr
