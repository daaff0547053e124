"""`realm quest` with the engine down: the CLI hands the command to the engine-side
dispatcher (here called in this process instead of `python -m`), which changes the
queue on disk under the hero's lock. The online path is in tests/process."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from engine.quests import commands
from tests.conftest import realm_here
from tests.quests.conftest import ROWS, quest_text


def run_in_process(cmd: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Stands in for `python -m engine.quests.commands ...`."""
    assert cmd[1:3] == ["-m", "engine.quests.commands"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = commands.main(cmd[3:])
    return subprocess.CompletedProcess(cmd, code, out.getvalue(), err.getvalue())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tui.cli.common.subprocess.run", run_in_process)


def test_realm_quest_with_the_engine_down(tmp_path: Path, offline: None) -> None:
    save = SaveDir(tmp_path / "saves" / "dio")
    save.create()
    args = ["--saves", str(tmp_path / "saves")]
    good = tmp_path / "good.jsonl"
    good.write_text(quest_text(ROWS[:5]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(quest_text(ROWS[:2]) + '{"messages": [{"role": "user"\n')

    added = realm_here("quest", "add", str(good), "--priority", "low", "--epochs", "2", *args)
    assert added.returncode == 0, added.stderr
    assert "good.jsonl queued (low, 5 rows)" in added.stdout
    assert good.exists()  # copied, the user's file stays
    refused = realm_here("quest", "add", str(bad), *args)
    assert refused.returncode == 1 and "bad.jsonl refused: line 3: invalid JSON" in refused.stderr
    moved = realm_here("quest", "priority", "good", "high", *args)
    assert moved.returncode == 0, moved.stderr
    listed = [json.loads(line) for line in realm_here("quest", "list", "--json", *args).stdout.splitlines()]
    assert [(q["name"], q["state"], q["priority"], q["epochs"]) for q in listed] == [
        ("good.jsonl", "queued", "high", 2)
    ]
    one = tmp_path / "one.jsonl"
    one.write_text(quest_text(ROWS[:1]))
    added_one = realm_here("quest", "add", str(one), *args)
    assert "one.jsonl queued (normal, 1 row)" in added_one.stdout, added_one.stdout + added_one.stderr
    assert realm_here("quest", "cancel", "one", *args).returncode == 0
    cancelled = realm_here("quest", "cancel", "good", *args)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    missing = realm_here("quest", "cancel", "nothing-here", *args)
    assert missing.returncode == 1 and "no quest named" in missing.stderr
    human = realm_here("quest", "list", *args).stdout
    assert "failed" in human and "cancelled by the user before it started" in human


def test_the_offline_dispatcher_waits_for_a_running_engine(tmp_path: Path) -> None:
    save = SaveDir(tmp_path / "dio")
    save.create()
    held = save.take_lock()  # an engine holds it
    try:
        request = json.dumps(p.command_to_dict(p.CancelQuest("x")))
        assert commands.main(["--save-dir", str(save.root), "--command", request]) == 3
    finally:
        held.close()


def test_a_bad_request_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save = SaveDir(tmp_path / "dio")
    save.create()
    for request in ('{"type": "Pause"}', '{"type": "Nope"}', '{"type": "CancelQuest"}', "not json"):
        assert commands.main(["--save-dir", str(save.root), "--command", request]) == 2
        assert "bad request" in capsys.readouterr().err


def test_rows_piped_into_quest_add_dash_are_a_quest(tmp_path: Path) -> None:
    import sys

    from tests.conftest import ROOT

    save = SaveDir(tmp_path / "saves" / "dio")
    save.create()
    rows = quest_text(ROWS[:3])
    command = [
        sys.executable,
        "-m",
        "tui.cli",
        "quest",
        "add",
        "-",
        "--priority",
        "high",
        "--saves",
        str(tmp_path / "saves"),
    ]
    done = subprocess.run(command, cwd=ROOT, input=rows, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "queued (high, 3 rows)" in done.stdout
    queued = list((save.root / "queue").rglob("stdin-*.jsonl"))
    assert len(queued) == 1 and queued[0].read_text() == rows
    empty = subprocess.run(command, cwd=ROOT, input="", capture_output=True, text=True, timeout=120)
    assert empty.returncode == 1 and "empty" in empty.stderr
