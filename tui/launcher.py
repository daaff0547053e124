"""Finding, starting, reaching and stopping a hero's engine, without importing torch.

The engine holds an flock on ``engine.lock`` for its whole life and writes its pid
to ``engine.pid``; a pid file whose process is gone (or is not an engine) is stale
and is cleaned up, and so is a socket nobody listens on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from engine import protocol as p

SAVES_ENV = "REALM_SAVES"
DEFAULT_HERO = "dio"


def default_saves_root() -> Path:
    """``saves/`` of the checkout when running from one, else a per-user folder."""
    env = os.environ.get(SAVES_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").exists() and (checkout / "saves").is_dir():
        return checkout / "saves"
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "realm" / "saves"


@dataclass(frozen=True)
class Hero:
    """One save slot, as the launcher sees it."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    def file(self, name: str) -> Path:
        return self.root / name

    @property
    def socket(self) -> Path:
        return p.socket_path(self.root)

    def read_status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.file(p.STATUS_NAME).read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def read_config(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.file("config.json").read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def engine_pid(self) -> int | None:
        """The live engine's pid, or None (cleaning up what a dead one left)."""
        pid_file = self.file(p.PID_NAME)
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _is_engine(pid):
            return pid
        return None

    def clean_stale(self) -> list[str]:
        """Remove a dead engine's pid file and socket. Only call when no engine is alive."""
        removed = []
        for path in (self.file(p.PID_NAME), self.socket):
            if path.exists() or path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def authkey(self) -> bytes:
        return self.file(p.AUTHKEY_NAME).read_bytes()

    def connect(self) -> Connection:
        """Open a connection to the engine (raises OSError while it is not listening)."""
        if not self.socket.exists():
            raise FileNotFoundError(f"no engine socket at {self.socket}")
        return Client(str(self.socket), family="AF_UNIX", authkey=self.authkey())

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.file(p.LOG_NAME).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _is_engine(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's: check what it is below
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (not Linux): trust the signal check
    return b"engine" in cmdline and b"-m" in cmdline


def engine_command(hero: Hero, model: str | None = None, extra: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(hero.root)]
    if model:
        cmd += ["--model", model]
    return cmd + (extra or [])


def spawn_engine(
    hero: Hero, model: str | None = None, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the engine detached: its own session (a terminal or SSH hang-up does not
    reach it), no stdin, output appended to the hero's engine.log."""
    hero.root.mkdir(parents=True, exist_ok=True)
    hero.clean_stale()
    log = open(hero.file(p.LOG_NAME), "ab")
    try:
        return subprocess.Popen(
            engine_command(hero, model, extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()


def stop_engine(hero: Hero, timeout: float = 120.0, on_wait: Any = None) -> bool:
    """Ask the engine to save and stop (SIGTERM, which it handles); wait for it to exit."""
    pid = hero.engine_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hero.engine_pid() is None:
            return True
        if on_wait:
            on_wait()
        time.sleep(0.2)
    raise TimeoutError(f"the engine (pid {pid}) did not stop within {timeout:.0f}s")
