"""Quests across real processes: `kill -9` of the engine mid-quest resumes the quest
from the last loot, and `realm quest` talks to a running engine over its socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, engine_process, last_step, losses, make_hero, realm, wait_until
from tests.quests.conftest import ROWS, quest_text

pytestmark = pytest.mark.slow

ORIGINAL = quest_text(ROWS, epochs=40)


def loot_with_quest_progress(checkpoints: Path) -> dict[str, int]:
    """loot name -> the quest row its metadata records (loot taken mid-quest)."""
    found = {}
    for meta in checkpoints.glob("step-*/meta.json"):
        quest = json.loads(meta.read_text()).get("quest")
        if quest and quest["seen"] > 0:
            found[meta.parent.name] = quest["seen"]
    return found


def test_kill_9_mid_quest_resumes_the_quest_from_the_last_loot(tmp_path: Path, hatchling_dir: Path) -> None:
    save, _ = make_hero(tmp_path, hatchling_dir)
    (save.root / "inbox").mkdir()
    (save.root / "inbox" / "epic.jsonl").write_text(ORIGINAL)
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root), "--checkpoint-every", "10"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(loot_with_quest_progress(save.checkpoints)) >= 2, what="loot taken mid-quest")
        wait_until(lambda: last_step(save.metrics) % 10 >= 3, what="steps past the loot")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert (save.root / "processing" / "epic.jsonl").exists()  # it was active when killed
    assert not list((save.root / "done").iterdir())
    mid = loot_with_quest_progress(save.checkpoints)
    newest = max(mid)  # step-NNNNNN sorts by step
    before = losses(save.metrics)
    resumed_from, killed_at = int(newest.split("-")[1]), max(before)
    second = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (save.root / "done" / "epic.jsonl").exists(), timeout=300, what="the quest done")
        second.send_signal(signal.SIGTERM)
        assert second.wait(120) == 0
    finally:
        second.kill()
    events = [json.loads(line)["text"] for line in save.events.read_text().splitlines()]
    resumed = [e for e in events if e.startswith("DIO takes on quest epic.jsonl at row")]
    assert resumed == [
        f"DIO takes on quest epic.jsonl at row {mid[newest]} of {len(ROWS) * 40}: {len(ROWS)} rows × 40 epochs"
    ]
    assert any("epic.jsonl was interrupted" in e for e in events)
    # the lost steps were trained again on exactly the same quest rows: same losses
    after = losses(save.metrics)
    replayed = range(resumed_from + 1, killed_at + 1)
    assert replayed and [after[s] for s in replayed] == [before[s] for s in replayed]
    assert (save.root / "done" / "epic.jsonl").read_text() == ORIGINAL  # the user's data, intact
    status = json.loads(save.status.read_text())
    assert status["gold"] == 100
    ledger = json.loads(save.ledger.read_text())
    assert [r["name"] for r in ledger["quests"].values()] == ["epic.jsonl"]  # paid once


def test_realm_quest_talks_to_a_running_engine(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = tmp_path / "saves"
    save, _ = make_hero(saves, hatchling_dir)
    args = ["--saves", str(saves)]
    good = tmp_path / "good.jsonl"
    good.write_text(quest_text(ROWS[:5]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(quest_text(ROWS[:2]) + '{"messages": [{"role": "user"\n')

    # engine down (in-process in tests/quests/test_commands.py): queue a quest to train
    added = realm("quest", "add", str(good), "--priority", "high", "--epochs", "2", *args)
    assert added.returncode == 0 and "good.jsonl queued (high, 5 rows)" in added.stdout, added.stderr

    # engine up: requests go over the socket; the engine trains the quest
    engine = engine_process(save)
    try:

        def states() -> dict[str, dict[str, object]]:
            out = realm("quest", "list", "--json", *args)
            return {q["name"]: q for q in map(json.loads, out.stdout.splitlines())}

        wait_until(lambda: states().get("good.jsonl", {}).get("state") == "done", what="good.jsonl done")
        done_step = states()["good.jsonl"]["finished_step"]
        again = realm("quest", "add", str(good), *args)  # the same content: not a new quest
        assert again.returncode == 1, again.stdout
        assert f"same content as quest good.jsonl (done at step {done_step})" in again.stderr
        other = tmp_path / "elsewhere" / "good.jsonl"
        other.parent.mkdir()
        other.write_text(quest_text(ROWS[5:10]))
        renamed = realm("quest", "add", str(other), *args)
        assert renamed.returncode == 0 and "good-2.jsonl queued" in renamed.stdout, renamed.stderr
        online_refusal = realm("quest", "add", str(bad), *args)
        assert online_refusal.returncode == 1 and "line 3: invalid JSON" in online_refusal.stderr
        missing = realm("quest", "cancel", "nothing-here", *args)
        assert missing.returncode == 1 and "no quest named" in missing.stderr
        wait_until(lambda: states().get("good-2.jsonl", {}).get("state") == "done", what="good-2.jsonl done")
        final = states()
        assert final["good.jsonl"]["loss_after"] is not None
        assert json.loads(save.status.read_text())["gold"] == 200  # two quests, paid once each
        assert {"name", "state", "priority", "reason"} <= set(final["good.jsonl"])
        stop = realm("stop", *args, timeout=300)
        assert stop.returncode == 0, stop.stderr
        engine.wait(60)
    finally:
        engine.kill()
    human = realm("quest", "list", *args).stdout
    assert "done" in human and "good.jsonl" in human
