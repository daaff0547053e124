"""The UI's one background thread: it connects to the engine, says Hello, and posts
every event it receives as one Textual message type, ``EngineMessage``.

Link happenings that are not protocol events (the engine went away) travel in the
same message as small local values, so the app has a single place to react.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.message import Message

from engine import protocol as p


@dataclass(frozen=True)
class LinkLost:
    """The connection ended (engine exited or crashed)."""

    reason: str


@dataclass(frozen=True)
class LinkWaiting:
    """Still trying to reach the engine (it is loading torch and the hero)."""

    seconds: float


class EngineMessage(Message):
    """Wraps one protocol event (or LinkLost / LinkWaiting)."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


Connector = Callable[[], Any]  # returns a connection with send/recv/close


class EngineLink:
    def __init__(
        self,
        connector: Connector,
        post: Callable[[EngineMessage], Any],
        engine_alive: Callable[[], bool] = lambda: True,
        connect_timeout: float = 120.0,
    ) -> None:
        self.connector = connector
        self.post = post
        self.engine_alive = engine_alive
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._send_lock = threading.Lock()
        self._retry = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="engine-link", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def send(self, command: Any) -> bool:
        """Send a command; False when there is no engine to send it to."""
        with self._send_lock:
            if self._conn is None:
                return False
            try:
                self._conn.send(command)
                return True
            except (OSError, ValueError):
                return False

    def reconnect(self) -> None:
        """After the engine was restarted: try to connect again."""
        self._retry.set()

    def close(self) -> None:
        self._closed = True
        self._retry.set()
        with self._send_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def _connect(self) -> Any:
        started = time.monotonic()
        last_note = 0.0
        while not self._closed:
            try:
                return self.connector()
            except (OSError, EOFError) as exc:
                waited = time.monotonic() - started
                if not self.engine_alive():
                    raise ConnectionError("the engine is not running") from exc
                if waited > self.connect_timeout:
                    raise ConnectionError(f"no answer from the engine in {waited:.0f}s") from exc
                if waited - last_note >= 1.0:
                    self.post(EngineMessage(LinkWaiting(waited)))
                    last_note = waited
                time.sleep(0.2)
        return None

    def _run(self) -> None:
        while not self._closed:
            try:
                conn = self._connect()
                if conn is None:
                    return
                conn.send(p.Hello())
                with self._send_lock:
                    self._conn = conn
                while True:
                    self.post(EngineMessage(conn.recv()))
            except (OSError, EOFError, ConnectionError) as exc:
                with self._send_lock:
                    self._conn = None
                if self._closed:
                    return
                reason = str(exc) or "the engine closed the connection"
                self.post(EngineMessage(LinkLost(reason)))
            self._retry.wait()
            self._retry.clear()
