"""The layout of one hero's save folder (DESIGN.md, "Saves"), and the engine's liveness
files in it: the lock, the pid file, the socket and its key.

Both sides use this module and nothing else to find a hero's files, so there is one
implementation of each rule: the engine holds an flock on ``engine.lock`` for its whole
life (the kernel drops it on any death, kill -9 included), and writes its pid to
``engine.pid``; a pid file whose process is gone, or is not this hero's engine, is stale.
Pure Python: no torch, nothing else from ``engine``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LOCK_NAME = "engine.lock"  # flock held for the engine's lifetime: the liveness truth
PID_NAME = "engine.pid"
AUTHKEY_NAME = "engine.key"  # mode 0600
SOCKET_NAME = "engine.sock"
STATUS_NAME = "hero.json"  # hero state, readable while the engine is down
CONFIG_NAME = "config.json"
LOG_NAME = "engine.log"
EVENTS_NAME = "events.jsonl"
METRICS_NAME = "metrics.jsonl"

# AF_UNIX paths are limited to 108 bytes on Linux; keep a margin.
_MAX_SOCKET_PATH = 100


def socket_path(save_dir: Path) -> Path:
    """Where the engine of ``save_dir`` listens. Both sides derive it the same way."""
    inside = save_dir / SOCKET_NAME
    if len(os.fsencode(str(inside.absolute()))) <= _MAX_SOCKET_PATH:
        return inside
    # A deep save folder: fall back to a short, stable name in the temp dir.
    digest = hashlib.sha1(str(save_dir.absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"realm-{os.getuid()}-{digest}.sock"


def is_hero_name(name: str) -> bool:
    """A hero's name is one plain folder name in the save root: no path ("../x", "a/b"),
    no hidden or dot name, no surrounding blanks or control characters. Every place that takes a name from a
    user (--hero, `realm heroes delete`, the start screen) checks it with this."""
    plain = name.isprintable() and name == name.strip() and not name.startswith(".")
    return bool(name) and plain and "/" not in name and "\\" not in name


def ended_without_stopping(last_state: str | None) -> bool:
    """An engine whose last word in hero.json was not "stopped" (or that never wrote
    one) and that is gone, crashed: a kill -9, an error, a power cut."""
    return last_state not in (None, "stopped")


class EngineBusy(Exception):
    """Another engine holds this hero's lock."""


@dataclass(frozen=True)
class SaveDir:
    root: Path

    @property
    def name(self) -> str:
        """The hero's name is its folder's name."""
        return self.root.name

    def file(self, name: str) -> Path:
        return self.root / name

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def base_model(self) -> Path:
        """Where the hatchling is created (a hero from --model trains from its own path)."""
        return self.root / "base"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def loot_steps_on_disk(self) -> list[int]:
        """The steps of the loot folders there are (``step-000200``; loot set aside by a
        rewind and unfinished writes left out), oldest first: what can still be said of a
        hero whose hero.json is gone."""
        if not self.checkpoints.is_dir():
            return []
        names = (entry.name for entry in self.checkpoints.iterdir() if entry.is_dir())
        return sorted(int(name[5:]) for name in names if name.startswith("step-") and name[5:].isdigit())

    @property
    def watchdog(self) -> Path:
        """The watchdog's state after a rollback, until the next loot carries it."""
        return self.root / "watchdog.json"

    @property
    def achievements(self) -> Path:
        """Achievements unlocked, with their step (engine/game/achievements.py)."""
        return self.root / "achievements.json"

    @property
    def shop(self) -> Path:
        """The Market: wares bought with gold and the ones worn (engine/game/shop.py)."""
        return self.root / "shop.json"

    @property
    def campaign(self) -> Path:
        """The campaign being followed: ``campaign.json`` (the checked phases, quest paths
        pointing at copies in ``campaign/``), and the user's file as given (``campaign/``)."""
        return self.root / "campaign.json"

    @property
    def campaign_files(self) -> Path:
        return self.root / "campaign"

    @property
    def row_sizes(self) -> Path:
        """The measured example length of every skill level (a cache: see train/fit.py)."""
        return self.root / "row-sizes.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.json"

    @property
    def status(self) -> Path:
        return self.root / STATUS_NAME

    @property
    def lock(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def pid(self) -> Path:
        return self.root / PID_NAME

    @property
    def no_hero(self) -> str:
        """What a command says when this hero does not exist yet."""
        return f"no hero at {self.root} (run `realm play` or `realm train` first)"

    @property
    def authkey_file(self) -> Path:
        return self.root / AUTHKEY_NAME

    @property
    def serve_token(self) -> Path:
        """`realm serve`'s bearer token (mode 0600)."""
        return self.root / "serve.token"

    @property
    def log(self) -> Path:
        return self.root / LOG_NAME

    @property
    def events(self) -> Path:
        return self.root / EVENTS_NAME

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_NAME

    @property
    def socket(self) -> Path:
        return socket_path(self.root)

    def create(self) -> None:
        """The hero's folder, private to its user (0700: weights, ledger, logs and quest
        data are theirs); the saves root above it is made as the umask says."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.checkpoints.mkdir(exist_ok=True)

    # ------------------------------------------------------------------ reading

    def read_status(self) -> dict[str, Any]:
        """hero.json: what the engine last reported ({} when there is none yet)."""
        return _read_dict(self.status)

    def read_config(self) -> dict[str, Any]:
        return _read_dict(self.config)

    def authkey(self) -> bytes:
        return self.authkey_file.read_bytes()

    def last_logged_step(self) -> int:
        """The newest training step metrics.jsonl records (0 without one): where an
        engine that died without a word had got to."""
        try:
            with open(self.metrics, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 16_384))
                tail = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return 0
        for line in reversed(tail):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "loss" in row and isinstance(row.get("step"), int):
                return int(row["step"])
        return 0

    def disk_bytes(self) -> int:
        """What the hero's folder takes on disk."""
        total = 0
        for path in self.root.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_blocks * 512
            except OSError:
                continue
        return total

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ liveness

    def try_lock(self) -> IO[str] | None:
        """The hero's engine lock, or None when an engine holds it. Held for as long as
        the returned file stays open: by the engine for its life, by `realm quest` while
        it changes the queue with the engine down."""
        handle = open(self.lock, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def take_lock(self) -> IO[str]:
        """try_lock, or EngineBusy naming the running engine's pid."""
        handle = self.try_lock()
        if handle is None:
            pid = self.pid.read_text().strip() if self.pid.exists() else "?"
            raise EngineBusy(f"an engine is already running for this hero (pid {pid})")
        return handle

    def engine_pid(self) -> int | None:
        """The live engine's pid, or None (a pid file left by a dead engine is stale)."""
        try:
            pid = int(self.pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_engine_of(pid, self.root) else None

    def clean_stale(self) -> list[str]:
        """Remove a dead engine's pid file and socket. Only call when no engine is alive."""
        removed = []
        for path in (self.pid, self.socket):
            if path.exists() or path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed


def _read_dict(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_engine_of(pid: int, root: Path) -> bool:
    """``pid`` is alive and is the engine of this save folder (a copied folder carries
    the original's pid file: that engine is not this hero's)."""
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
    if b"engine" not in cmdline or b"-m" not in cmdline or b"--save-dir" not in cmdline:
        return False
    at = cmdline.index(b"--save-dir") + 1
    if at >= len(cmdline):
        return False
    try:
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except OSError:
        cwd = Path.cwd()
    given = Path(os.fsdecode(cmdline[at]))
    return (cwd / given).resolve() == root.resolve()
