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

import pytest

from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.savedir import SaveDir
from tests.conftest import (
    ROOT,
    after_last_resume,
    engine_process,
    last_step,
    losses,
    make_hero,
    realm,
    wait_until,
)

pytestmark = pytest.mark.slow


def live_loot(ledger: Path) -> set[str]:
    """Loot the ledger says exists (pruned rows stay in the ledger, flagged deleted)."""
    return {r["name"] for r in json.loads(ledger.read_text())["loot"].values() if not r["deleted"]}


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
    # Loot is what the ledger lists, and any complete folder a kill during a save left
    # unlisted (renamed, not yet recorded): the restart adopts it.
    loot_before = live_loot(save.ledger) | {
        f.name
        for f in save.checkpoints.glob("step-*")
        if (f / "meta.json").exists() and (f / "trainer.pt").exists()
    }
    assert SaveDir(save.root).engine_pid() is None  # the stale pid file is recognised as dead
    assert save.pid.exists()
    # Restart: resumes from the newest loot and re-trains the lost steps identically.
    subprocess.run(
        [*cmd, "--max-steps", str(killed_at + 5)], cwd=ROOT, check=True, timeout=300, capture_output=True
    )
    resumed_from, after = after_last_resume(save.metrics)
    assert resumed_from == max(int(n.split("-")[1]) for n in loot_before)
    assert resumed_from < killed_at
    replayed = range(resumed_from + 1, killed_at + 1)
    assert [after[s] for s in replayed] == [before[s] for s in replayed]
    loot_after = live_loot(save.ledger)
    log = save.log.read_text()
    for name in loot_before - loot_after:  # no checkpoint lost: only retention prunes, and says so
        assert f"pruned loot {name}: " in log, name
    missing = [
        n for n in loot_before & loot_after if not (save.checkpoints / n / "model.safetensors").exists()
    ]
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

        # The real socket, through the one client: handshake, pause, resume.
        client = EngineClient.connect(save)
        assert client.hello().pid == train.pid
        client.request(p.Pause(), (p.Paused,), 60)
        wait_until(lambda: status()["state"] == "paused", what="paused status")
        client.send(p.RunEval())  # asked for: it runs while paused, on the task board
        wait_until(
            lambda: any(t["kind"] == "eval" and t["state"] == "done" for t in status()["tasks"]),
            what="the eval task done in realm status --json",
        )
        client.send(p.Resume())
        client.close()
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


def test_a_crash_is_reported_as_a_crash_and_the_ledger_may_vanish(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    saves = tmp_path / "saves"
    save, _ = make_hero(saves, hatchling_dir)
    args = ["--saves", str(saves)]
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root), "--checkpoint-every", "5"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(live_loot(save.ledger)) >= 1 if save.ledger.exists() else False, what="loot")
        save.ledger.unlink()  # deleted while the engine runs
        wait_until(lambda: len(list(save.checkpoints.glob("step-*"))) >= 2, what="more loot")
        wait_until(lambda: last_step(save.metrics) % 5 >= 2, what="steps past the loot")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    folders = sorted(f.name for f in save.checkpoints.glob("step-*"))
    newest = int(folders[-1].split("-")[1])
    status = json.loads(realm("status", "--json", *args).stdout)
    assert status["state"] == "crashed" and status["pid"] is None
    died_at = status["died_at_step"]
    assert died_at >= last_step(save.metrics) and died_at > newest
    human = realm("status", *args).stdout
    assert f"crashed at step {died_at:,}" in human and "last loot" in human
    again = subprocess.run(
        [*cmd, "--max-steps", str(died_at + 1)], cwd=ROOT, capture_output=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    log = save.log.read_text()
    assert (
        f"The engine died at step {died_at}; resuming from loot {newest} ({died_at - newest} steps replayed)"
        in log
    )
    # every folder is adopted back; the only ones gone are old automatic loot that
    # retention pruned afterwards, each with its log line (never removed as debris)
    now = {f.name for f in save.checkpoints.glob("step-*")}
    for name in set(folders) - now:
        assert f"pruned loot {name}: " in log, name
    assert now & set(folders) and live_loot(save.ledger) >= now & set(folders)
    assert json.loads(realm("status", "--json", *args).stdout)["state"] == "stopped"


def test_realm_stop_stops_only_its_own_hero(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = tmp_path / "saves"
    save, _ = make_hero(saves, hatchling_dir)
    engine = engine_process(save)
    try:
        wait_until(lambda: save.engine_pid() == engine.pid, what="the engine")
        copy = saves / "copy"
        shutil.copytree(save.root, copy, ignore=shutil.ignore_patterns("engine.sock"))
        assert (copy / "engine.pid").read_text().strip() == str(engine.pid)  # the original's pid
        out = realm("stop", "--hero", "copy", "--saves", str(saves))
        assert out.returncode == 0 and "not training" in out.stdout, out.stdout + out.stderr
        time.sleep(1.0)
        assert engine.poll() is None  # the original hero trains on
        assert realm("stop", "--saves", str(saves), timeout=300).returncode == 0
        engine.wait(60)
    finally:
        engine.kill()
