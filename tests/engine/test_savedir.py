"""The save folder's liveness rules, one implementation for both sides: the lock, the
pid file (stale when its process is gone or is not an engine), the socket path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.protocol.savedir import SOCKET_NAME, EngineBusy, SaveDir, is_hero_name, socket_path
from engine.run import main as engine_main
from tests.conftest import realm_here


def test_socket_path_stays_short(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120) / "dio"
    path = socket_path(deep)
    assert len(str(path)) <= 100
    assert socket_path(deep) == path  # both sides derive the same one
    assert socket_path(tmp_path / "dio") == tmp_path / "dio" / SOCKET_NAME


def test_one_lock_per_hero(tmp_path: Path) -> None:
    save = SaveDir(tmp_path / "dio")
    save.create()
    save.pid.write_text("4242\n")
    held = save.take_lock()
    try:
        assert save.try_lock() is None
        with pytest.raises(EngineBusy, match=r"already running for this hero \(pid 4242\)"):
            save.take_lock()
    finally:
        held.close()
    again = save.try_lock()  # the kernel drops the lock with its holder
    assert again is not None
    again.close()


def test_a_stale_pid_file_is_not_an_engine(tmp_path: Path) -> None:
    save = SaveDir(tmp_path / "dio")
    save.create()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    save.pid.write_text(f"{dead.pid}\n")
    assert save.engine_pid() is None
    save.pid.write_text(f"{os.getpid()}\n")  # alive, but pytest is not an engine
    assert save.engine_pid() is None
    save.socket.write_text("")
    assert sorted(save.clean_stale()) == ["engine.pid", "engine.sock"]
    assert not save.pid.exists() and not save.socket.exists()


class NoSignals:
    """Stands in for the engine's signal handler: this test must not take pytest's Ctrl+C."""

    def __init__(self) -> None:
        self.reason = None

    def attach(self, worker: object) -> None:
        pass


def test_a_second_engine_for_the_same_hero_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    save = SaveDir(tmp_path / "saves" / "dio")
    save.create()
    save.pid.write_text(f"{os.getpid()}\n")
    monkeypatch.setattr(engine_main, "StopOnSignal", NoSignals)
    held = save.take_lock()  # as a running engine holds it
    try:
        assert engine_main.main(["--save-dir", str(save.root)]) == engine_main.EXIT_ALREADY_RUNNING
        assert f"already running for this hero (pid {os.getpid()})" in capsys.readouterr().err
    finally:
        held.close()
    # `realm train` refuses before it would start one, when an engine is alive
    monkeypatch.setattr(SaveDir, "engine_pid", lambda self: 4242)
    refused = realm_here("train", "--saves", str(tmp_path / "saves"))
    assert refused.returncode == 3 and "already training in the background (pid 4242)" in refused.stderr


@pytest.mark.parametrize("name", ["dio", "sage-2", "Ada_Lovelace", "héros", "a.b"])
def test_plain_names_are_hero_names(name: str) -> None:
    assert is_hero_name(name)


@pytest.mark.parametrize(
    "name", ["", "..", "../x", "a/b", "a\\b", ".hidden", " dio", "dio\n", "d\x00io", "\t"]
)
def test_paths_and_odd_names_are_not(name: str) -> None:
    assert not is_hero_name(name)  # each of these would name a folder other than root/name
