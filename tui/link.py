"""The game's link to its engine, without importing torch.

``EngineControl`` is the engine as a process: start it detached, tell whether it is
alive, restart it, stop it, read its log. ``EngineLink`` is the UI's one background
thread: it connects (through the one client, ``engine.protocol.client``), says Hello,
and posts every event it receives as one Textual message type, ``EngineMessage``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.savedir import SaveDir
from tui.messages import EngineMessage, LinkLost, LinkWaiting


@dataclass(frozen=True)
class DownReport:
    """Why the engine is down, as the save folder tells it: its log's last lines, and the
    one-line reason when it refused to start (a setting, a model folder: something to
    change, not a crash; engine/run/main.py)."""

    log_tail: str = ""
    refused: str = ""


def engine_command(
    save: SaveDir, model: str | None = None, extra: list[str] | None = None, gpus: int = 1
) -> list[str]:
    """The command line of the hero's engine process; with ``gpus`` > 1, torchrun starts
    that many ranks of it (rank 0 is the engine; engine/train/team.py)."""
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root)]
    if gpus > 1:
        # torchrun (engine/run/launch.py: without its traceback after a Ctrl+C)
        launch = ["-m", "engine.run.launch", "--standalone", f"--nproc-per-node={gpus}", "-m", "engine"]
        cmd = [sys.executable, *launch, "--save-dir", str(save.root)]
    if model:
        cmd += ["--model", model]
    return cmd + (extra or [])


class EngineControl:
    """One hero's engine process, seen from the game and the CLI."""

    def __init__(
        self, save: SaveDir, model: str | None = None, extra: list[str] | None = None, gpus: int = 1
    ) -> None:
        self.save = save
        self.model = model
        self.extra = extra or []
        self.gpus = gpus
        self._spawned: subprocess.Popen[bytes] | None = None  # alive while it loads torch

    def connect(self) -> EngineClient:
        return EngineClient.connect(self.save)

    def alive(self) -> bool:
        """An engine runs for this hero (one we just started counts while it is still
        importing torch, before its pid file exists)."""
        if self.save.engine_pid() is not None:
            return True
        return self._spawned is not None and self._spawned.poll() is None

    def start(self) -> None:
        """Start the engine detached unless one runs: its own session (a terminal or SSH
        hang-up does not reach it), no stdin, output appended to the hero's engine.log."""
        if self.save.engine_pid() is not None:
            return
        self.save.create()
        self.save.clean_stale()
        log = open(self.save.log, "ab")
        try:
            self._spawned = subprocess.Popen(
                engine_command(self.save, self.model, self.extra, self.gpus),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()

    def restart(self) -> None:
        self.start()

    def down_report(self, lines: int = 12) -> DownReport:
        status = self.save.read_status()
        refused = str(status.get("error") or "") if status.get("refused") else ""
        return DownReport(self.save.log_tail(lines), refused)

    def export_loot(self, name: str, dest: str) -> tuple[bool, str]:
        """`realm export` for one loot, engine-side (it loads torch): (ok, what happened)."""
        target = os.path.abspath(os.path.expanduser(dest))
        cmd = [
            sys.executable,
            "-m",
            "engine.model.export",
            "--save-dir",
            str(self.save.root),
            "--loot",
            name,
            target,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        said = (done.stdout + done.stderr).strip().splitlines()
        return done.returncode == 0, said[-1] if said else f"export exited with {done.returncode}"

    def stop(self, timeout: float = 120.0, on_wait: Callable[[], Any] | None = None) -> bool:
        """Ask the engine to save and stop (SIGTERM, which it handles); wait for it to exit.
        False when none was running."""
        pid = self.save.engine_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.save.engine_pid() is None:
                return True
            if on_wait:
                on_wait()
            time.sleep(0.2)
        raise TimeoutError(f"the engine (pid {pid}) did not stop within {timeout:.0f}s")


Connector = Callable[[], EngineClient]


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
        self._client: EngineClient | None = None
        self._send_lock = threading.Lock()
        self._retry = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="engine-link", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._client is not None

    def send(self, command: p.Command) -> bool:
        """Send a command; False when there is no engine to send it to."""
        with self._send_lock:
            if self._client is None:
                return False
            try:
                self._client.send(command)
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
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.close()

    def _connect(self) -> EngineClient | None:
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
                client = self._connect()
                if client is None:
                    return
                client.send(p.Hello())
                with self._send_lock:
                    self._client = client
                while True:
                    # conn.recv, not client.recv: the link keeps no history of its own
                    self.post(EngineMessage(client.conn.recv()))
            except (OSError, EOFError, ConnectionError) as exc:
                with self._send_lock:
                    self._client = None
                if self._closed:
                    return
                reason = str(exc) or "the engine closed the connection"
                self.post(EngineMessage(LinkLost(reason)))
            self._retry.wait()
            self._retry.clear()
