"""The engine's side of the wire: accepts UI connections, queues their commands for
the worker loop, and delivers events to every attached UI.

Each client has a reader thread (commands in) and a sender thread with its own
outbox (events out), so a slow or frozen UI never stalls training. If an outbox
overflows, that client is dropped rather than losing events silently: it reattaches
and gets a fresh Snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import threading
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir

log = logging.getLogger("engine.run.server")

OUTBOX_LIMIT = 10_000


class ClientLeft:
    """Put in the command queue when a client's connection ends (not a protocol message)."""


CLIENT_LEFT = ClientLeft()
Incoming = tuple["ClientSession", "p.Command | ClientLeft"]


def load_or_create_authkey(save: SaveDir) -> bytes:
    path = save.authkey_file
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    os.chmod(path, 0o600)
    return path.read_bytes()


class ClientSession:
    def __init__(self, conn: Any, name: str, inbox: queue.Queue[Incoming]) -> None:
        self.conn = conn
        self.name = name
        self.inbox = inbox
        self.outbox: queue.Queue[Any] = queue.Queue(maxsize=OUTBOX_LIMIT)
        self.alive = True
        self.greeted = False
        self.watcher = True  # set from Hello: `realm quest` connects without watching
        threading.Thread(target=self._read, name=f"{name}-reader", daemon=True).start()
        self._sender = threading.Thread(target=self._write, name=f"{name}-sender", daemon=True)
        self._sender.start()

    def _read(self) -> None:
        while self.alive:
            try:
                command = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # an unpicklable or foreign message: say so, go on
                self.send(p.CommandRejected("?", f"unreadable message: {exc}"))
                continue
            if not isinstance(command, p.Command):
                self.send(p.CommandRejected(type(command).__name__, "unknown command"))
                continue
            self.inbox.put((self, command))
        self.close()
        self.inbox.put((self, CLIENT_LEFT))

    def _write(self) -> None:
        while True:
            event = self.outbox.get()
            if event is None:
                break
            try:
                self.conn.send(event)
            except (OSError, ValueError):
                break
        self.close()

    def send(self, event: Any) -> None:
        if not self.alive:
            return
        try:
            self.outbox.put_nowait(event)
        except queue.Full:
            log.warning("client %s is not reading; dropping it", self.name)
            self.close()

    def flush_and_close(self, timeout: float) -> None:
        """Deliver what is queued (e.g. the final Stopped), then hang up."""
        if self.alive:
            self.outbox.put(None)
            self._sender.join(timeout)
        self.close()

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.outbox.put(None)
            with contextlib.suppress(OSError):
                self.conn.close()


class EngineServer:
    def __init__(self) -> None:
        self.commands: queue.Queue[Incoming] = queue.Queue()
        self.clients: list[ClientSession] = []
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._count = 0

    def attach(self, conn: Connection | Any) -> ClientSession:
        """Serve one already-open connection (a Pipe end in tests, or an accepted socket)."""
        with self._lock:
            self._count += 1
            session = ClientSession(conn, f"client{self._count}", self.commands)
            self.clients.append(session)
        return session

    def listen(self, address: Path, authkey: bytes) -> None:
        if address.exists():
            address.unlink()  # stale: we hold the hero's lock, so no engine owns it
        self._listener = Listener(str(address), family="AF_UNIX", authkey=authkey)
        os.chmod(address, 0o600)
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn = self._listener.accept()
            except OSError:
                return  # listener closed
            except Exception as exc:  # bad authkey, a port scanner: keep accepting
                log.warning("rejected a connection: %s", exc)
                continue
            self.attach(conn)

    def broadcast(self, event: Any) -> None:
        with self._lock:
            self.clients = [c for c in self.clients if c.alive]
            clients = list(self.clients)
        for client in clients:
            if client.greeted:  # before its Snapshot a client gets nothing else
                client.send(event)

    def next_command(self, timeout: float | None) -> Incoming | None:
        try:
            if timeout == 0:
                return self.commands.get_nowait()
            return self.commands.get(timeout=timeout)
        except queue.Empty:
            return None

    def watchers(self) -> int:
        with self._lock:
            return sum(1 for c in self.clients if c.alive and c.greeted and c.watcher)

    def close(self, address: Path | None = None) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if address is not None and address.exists():
            address.unlink()
        with self._lock:
            clients = list(self.clients)
        for client in clients:
            client.flush_and_close(timeout=2.0)
