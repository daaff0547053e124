"""Nothing a client sends stops the engine: a real engine process, its real socket.

A client that resets mid-handshake or stays silent does not stop others from
attaching; objects that are not valid commands are answered with CommandRejected and
dropped; a flood of commands is refused at the door while DIO keeps training."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.savedir import SaveDir
from tests.conftest import engine_process, make_hero, wait_until

pytestmark = pytest.mark.slow


class NotACommand:
    """A class the engine has never heard of."""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, hatchling_dir: Path) -> Iterator[SaveDir]:
    save, _ = make_hero(tmp_path_factory.mktemp("wire"), hatchling_dir)
    proc = engine_process(save)
    try:
        wait_until(lambda: save.socket.exists() and save.engine_pid() == proc.pid, what="the engine")
        yield save
    finally:
        proc.terminate()
        proc.wait(120)


def steps_go_on(client: EngineClient) -> int:
    first = client.wait_for(p.StepCompleted).step
    return int(client.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step > first).step)


def test_broken_and_silent_clients_do_not_stop_others(engine: SaveDir) -> None:
    for _ in range(20):  # connect and reset at once, mid-handshake
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(engine.socket))
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    silent = socket.socket(socket.AF_UNIX)  # connects and never says a word
    silent.connect(str(engine.socket))
    try:
        with pytest.raises(AuthenticationError):  # a wrong key is refused, and only it
            Client(str(engine.socket), family="AF_UNIX", authkey=b"wrong key")
        with EngineClient.connect(engine) as client:
            assert client.hello().pid > 0
            steps_go_on(client)
    finally:
        silent.close()


def test_what_is_not_a_valid_command_is_rejected_and_dropped(engine: SaveDir) -> None:
    bad: list[Any] = [
        p.AddQuest(path=None),  # type: ignore[arg-type]
        p.SetQuestPriority("x.jsonl", "urgent"),
        p.CancelQuest(42),  # type: ignore[arg-type]
        {"type": "Pause"},
        NotACommand(),
        p.Paused(step=1),  # an event is not a command
    ]
    with EngineClient.connect(engine) as client:
        client.hello()
        for thing in bad:
            client.send(thing)
            rejected = client.wait_for(p.CommandRejected, 30)
            assert rejected.reason
        client.conn.send_bytes(b"\x80\x05garbage")
        assert "unreadable" in client.wait_for(p.CommandRejected, 30).reason
        steps_go_on(client)
    with EngineClient.connect(engine) as huge:  # a message over the limit ends that client
        huge.hello()
        with pytest.raises((EOFError, OSError)):  # hung up on, mid-send or after
            huge.conn.send_bytes(b"x" * 2_000_000)
            while True:
                huge.recv()
    with EngineClient.connect(engine) as client:  # and the engine is still there for others
        client.hello()
        steps_go_on(client)


def test_a_flood_of_commands_is_refused_while_training_goes_on(engine: SaveDir) -> None:
    with EngineClient.connect(engine) as watcher, EngineClient.connect(engine) as flood:
        watcher.hello()
        flood.hello()
        before = watcher.wait_for(p.StepCompleted).step
        sent = 0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            flood.send(p.Resume())
            sent += 1
        after = steps_go_on(watcher)
        assert after > before
        rejected = []
        until = time.monotonic() + 3.0
        while time.monotonic() < until and flood.conn.poll(0.5):
            event = flood.recv()
            if isinstance(event, p.CommandRejected):
                rejected.append(event)
        assert sent > 1000 and rejected, sent
        assert all("too many commands" in r.reason for r in rejected)
        assert watcher.request(p.Pause(), (p.Paused,), 60).step >= after  # it still listens
        watcher.send(p.Resume())
