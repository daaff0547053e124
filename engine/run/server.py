"""The engine's side of the wire: accepts UI connections, queues their commands for
the worker loop, and delivers events to every attached UI.

Each client has a reader thread (commands in) and a sender thread with its own
outbox (events out), so a slow or frozen UI never stalls training. If an outbox
overflows, that client is dropped rather than losing events silently: it reattaches
and gets a fresh Snapshot.

Nothing a client sends can stop the engine. The authentication handshake runs on its
own thread with a deadline (a silent or vanishing client blocks nobody); a message is
read with a size limit and unpickled only into the protocol's command classes, then
checked field by field (anything else is answered with CommandRejected and dropped);
and each client may have only so many commands waiting, so a flood is refused at the
door instead of stalling training.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir

log = logging.getLogger("engine.run.server")

OUTBOX_LIMIT = 10_000
HANDSHAKE_SECONDS = 5.0  # a client must authenticate within this
MAX_MESSAGE_BYTES = 1 << 20  # no command is near this; a larger message ends the client
PENDING_LIMIT = 64  # commands of one client waiting for the loop; more are refused


class CommandUnpickler(pickle.Unpickler):
    """Unpickles protocol commands and nothing else (no other class is ever built)."""

    def find_class(self, module: str, name: str) -> Any:
        cls = p.COMMAND_TYPES.get(name)
        if module == p.__name__ and cls is not None:
            return cls
        raise pickle.UnpicklingError(f"{module}.{name} is not a command")


def read_command(data: bytes) -> p.Command:
    """A checked command from a message's bytes; ValueError says what is wrong."""
    try:
        command = CommandUnpickler(io.BytesIO(data)).load()
    except Exception as exc:  # any pickle problem: a foreign class, garbage, truncation
        raise ValueError(f"unreadable message ({type(exc).__name__}: {exc})") from None
    problem = p.command_problem(command)
    if problem is not None:
        raise ValueError(problem)
    typed: p.Command = command
    return typed


class _Deadline:
    """A connection whose reads give up at a deadline (for the handshake)."""

    def __init__(self, conn: Connection, seconds: float) -> None:
        self.conn = conn
        self.deadline = time.monotonic() + seconds

    def send_bytes(self, data: bytes) -> None:
        self.conn.send_bytes(data)

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0 or not self.conn.poll(left):
            raise TimeoutError("the client did not authenticate in time")
        return self.conn.recv_bytes(maxlength)


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
        self.pending = threading.BoundedSemaphore(PENDING_LIMIT)  # released by the loop
        self._refusing = False  # dropping commands of a flood
        threading.Thread(target=self._read, name=f"{name}-reader", daemon=True).start()
        self._sender = threading.Thread(target=self._write, name=f"{name}-sender", daemon=True)
        self._sender.start()

    def _read(self) -> None:
        while self.alive:
            try:
                data = self.conn.recv_bytes(MAX_MESSAGE_BYTES)
            except (EOFError, OSError) as exc:  # gone, or a message over the limit
                if "bad message length" in str(exc):
                    self.send(p.CommandRejected("?", f"message over {MAX_MESSAGE_BYTES:,} bytes"))
                break
            try:
                command = read_command(data)
            except ValueError as exc:
                self.send(p.CommandRejected("?", str(exc)))
                continue
            if not self.pending.acquire(blocking=False):
                if not self._refusing:  # one word per burst, not one per dropped command
                    self._refusing = True
                    self.send(p.CommandRejected(type(command).__name__, "too many commands waiting; dropped"))
                continue
            self._refusing = False
            self.inbox.put((self, command))
        self.close()
        self.inbox.put((self, CLIENT_LEFT))

    def done_with(self, command: p.Command | ClientLeft) -> None:
        """The loop has handled one of this client's commands."""
        if not isinstance(command, ClientLeft):
            with contextlib.suppress(ValueError):  # released more than acquired: harmless
                self.pending.release()

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
            hang_up(self.conn)


def hang_up(conn: Any) -> None:
    """Close a connection for good. A plain close() leaves the socket open while another
    thread is blocked sending on it (to a client that does not read, which in turn may
    be blocked sending to us): shutting the socket down first ends both."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        dup = socket.socket(fileno=os.dup(conn.fileno()))
        with contextlib.suppress(OSError):
            dup.shutdown(socket.SHUT_RDWR)
        dup.close()
    with contextlib.suppress(OSError):
        conn.close()


class EngineServer:
    def __init__(self) -> None:
        self.commands: queue.Queue[Incoming] = queue.Queue()
        self.clients: list[ClientSession] = []
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._authkey = b""
        self._count = 0
        self.observers: list[Callable[[Any], None]] = []  # see every event first (achievements)

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
        # No authkey here: the handshake runs per connection, off the accept loop.
        self._listener = Listener(str(address), family="AF_UNIX")
        self._authkey = authkey
        os.chmod(address, 0o600)
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def _accept(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn = listener.accept()
            except Exception as exc:  # a client that reset at once, or the listener closed
                if self._listener is None:
                    return
                log.warning("a connection failed before its handshake: %s", exc)
                continue
            threading.Thread(target=self._handshake, args=(conn,), name="handshake", daemon=True).start()

    def _handshake(self, conn: Connection) -> None:
        try:
            timed: Any = _Deadline(conn, HANDSHAKE_SECONDS)
            deliver_challenge(timed, self._authkey)
            answer_challenge(timed, self._authkey)
        except Exception as exc:  # a wrong key, a silent client, a reset: only it is lost
            log.warning("rejected a connection: %s", exc)
            with contextlib.suppress(OSError):
                conn.close()
            return
        if self._listener is not None:
            self.attach(conn)

    def broadcast(self, event: Any) -> None:
        for observe in list(self.observers):
            observe(event)
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
