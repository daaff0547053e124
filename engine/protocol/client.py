"""The one client of the engine: connect, say Hello, send commands, wait for events.

The game's link thread, `realm quest`, the benchmarks and the tests all talk to an
engine through ``EngineClient``, over the hero's Unix socket (``connect``) or over any
other connection with ``send``/``recv``/``poll`` (a ``multiprocessing.Pipe()`` end in
tests). Pure Python: no torch, nothing else from ``engine``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from multiprocessing.connection import Client
from typing import Any, TypeVar

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir

E = TypeVar("E")

WAKE_TIMEOUT = 60.0  # an engine that holds the lock may still be loading torch


class EngineGone(ConnectionError):
    """The engine stopped, or refused the handshake, before it answered."""


class EngineClient:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.seen: list[Any] = []  # every event received, in order (tests read it)

    # ------------------------------------------------------------------ connecting

    @classmethod
    def connect(cls, save: SaveDir) -> EngineClient:
        """Connect to the hero's engine now (OSError while it is not listening)."""
        if not save.socket.exists():
            raise FileNotFoundError(f"no engine socket at {save.socket}")
        return cls(Client(str(save.socket), family="AF_UNIX", authkey=save.authkey()))

    @classmethod
    def connect_waiting(
        cls, save: SaveDir, timeout: float = WAKE_TIMEOUT, alive: Callable[[], bool] | None = None
    ) -> EngineClient:
        """Connect, retrying while the engine wakes up (gives up early when ``alive``
        says there is no engine to wait for)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return cls.connect(save)
            except OSError:
                if time.monotonic() > deadline or (alive is not None and not alive()):
                    raise
                time.sleep(0.2)

    def hello(self, client: str = "tui", watcher: bool = True, timeout: float = WAKE_TIMEOUT) -> p.Snapshot:
        """The handshake: Hello, answered by the whole game state."""
        self.send(p.Hello(client=client, watcher=watcher))
        answer = self.wait_for((p.Snapshot, p.HandshakeError), timeout)
        if isinstance(answer, p.HandshakeError):
            raise EngineGone(answer.reason)
        return answer

    # ------------------------------------------------------------------ talking

    def send(self, command: Any) -> None:
        self.conn.send(command)

    def recv(self) -> Any:
        event = self.conn.recv()
        self.seen.append(event)
        return event

    def wait_for(self, kinds: type[E] | tuple[type, ...], timeout: float = 60.0) -> Any:
        """The next event of one of ``kinds`` (others are recorded in ``seen`` and
        skipped). TimeoutError names what did come; EngineGone if the engine stops first."""
        names = kinds.__name__ if isinstance(kinds, type) else "/".join(k.__name__ for k in kinds)
        return self.wait_until(lambda event: isinstance(event, kinds), timeout, names)

    def wait_until(self, wanted: Callable[[Any], bool], timeout: float = 60.0, what: str = "event") -> Any:
        """The next event ``wanted`` accepts; see ``wait_for``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self.conn.poll(min(0.2, left)):
                continue
            event = self.recv()
            if wanted(event):
                return event
            if isinstance(event, p.Stopped):
                raise EngineGone("the engine stopped before it answered")
        raise TimeoutError(
            f"no {what} within {timeout:.0f}s; saw {[type(e).__name__ for e in self.seen[-20:]]}"
        )

    def request(self, command: Any, kinds: tuple[type, ...], timeout: float) -> Any:
        """Send one command and wait for its answer."""
        self.send(command)
        return self.wait_for(kinds, timeout)

    def close(self, goodbye: bool = False) -> None:
        """Hang up; with ``goodbye`` the engine hears that the UI left on purpose."""
        with contextlib.suppress(OSError, ValueError):
            if goodbye:
                self.conn.send(p.Goodbye())
            self.conn.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
