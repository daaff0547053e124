"""The inbox: a thread that watches ``inbox/`` with watchfiles and queues complete files.

watchfiles wakes the thread as soon as something lands; a directory listing on every
tick (TICK_MS) backs it up, because an event can be missed (a file written just before
the watch began, a network filesystem without inotify).

A file is taken only when it is complete: its size and mtime have not changed for
``stable_seconds`` and no process we can see has it open for writing. Files that a
writer marks as unfinished (hidden, ``.part``, ``.tmp``…) are ignored until renamed.
The same thread validates `realm quest add` requests, so a large file never stalls
the training loop; results go back to the loop through ``results`` (a queue the loop
drains between steps: the loop is the one that tells the UI).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchfiles

from engine.protocol.messages import QuestInfo
from engine.protocol.names import printable
from engine.quests.format import QuestRejected
from engine.quests.queue import QuestQueue, ignored_name

log = logging.getLogger("engine.quests.inbox")

STABLE_SECONDS = 1.0
TICK_MS = 250  # how often the watcher wakes with no events, to re-check candidates


@dataclass(frozen=True)
class AddRequest:
    path: Path
    priority: str | None
    epochs: int | None
    checks: str | None
    reply_to: Any = None  # the client that asked (the loop answers it)


@dataclass(frozen=True)
class IntakeResult:
    name: str
    info: QuestInfo | None  # None when refused
    reason: str = ""
    notices: tuple[str, ...] = ()
    reply_to: Any = None


class Inbox:
    def __init__(
        self, quests: QuestQueue, default_checks: str = "standard", stable_seconds: float = STABLE_SECONDS
    ) -> None:
        self.quests = quests
        self.default_checks = default_checks
        self.stable_seconds = stable_seconds
        self.results: queue.Queue[IntakeResult] = queue.Queue()
        self._requests: queue.Queue[AddRequest] = queue.Queue()
        self._stop = threading.Event()
        self._seen: dict[Path, tuple[tuple[int, float], float]] = {}  # path -> (size, mtime), changed at
        self._given_up: set[Path] = set()  # files that could not even be moved
        self._thread = threading.Thread(target=self._run, name="inbox", daemon=True)

    def start(self) -> None:
        self.quests.create()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def add(self, request: AddRequest) -> None:
        self._requests.put(request)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        """Watch until stopped. Nothing a file does may end this thread: an error is
        logged and the watch starts again."""
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception:
                log.exception("the inbox watcher failed; watching again in a second")
                self._stop.wait(1.0)

    def _watch(self) -> None:
        self.quests.inbox.mkdir(parents=True, exist_ok=True)  # a removed inbox comes back
        self._rescan()  # files dropped while DIO slept
        for changes in watchfiles.watch(
            self.quests.inbox,
            watch_filter=None,  # our own rule (ignored_name) decides
            debounce=100,
            step=50,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
            recursive=False,
            raise_interrupt=False,
        ):
            for change, name in changes:
                path = Path(name)
                if change == watchfiles.Change.deleted:
                    self._seen.pop(path, None)
                else:
                    self._saw(path)
            # A listing on every tick as well: an event can be missed (a file written
            # before the watch began, network filesystems without inotify).
            self._rescan()
            self._serve_requests()
            self._take_complete()

    def _rescan(self) -> None:
        try:
            present = set(self.quests.inbox.iterdir())
        except OSError:
            return
        for path in sorted(present):
            self._saw(path)
        for path in list(self._seen):
            if path not in present:
                del self._seen[path]
        self._given_up &= present  # a file taken away and dropped again gets a new try

    def _saw(self, path: Path) -> None:
        if ignored_name(path.name) or path in self._given_up:
            return
        try:
            info = path.stat()
        except OSError:
            try:
                info = path.lstat()  # a broken link or a loop: taken, and refused with a reason
            except OSError:
                self._seen.pop(path, None)  # gone
                return
        now = time.monotonic()
        signature = (info.st_size, info.st_mtime)
        old = self._seen.get(path)
        if old is None or old[0] != signature:
            self._seen[path] = (signature, now)

    def _take_complete(self) -> None:
        now = time.monotonic()
        for path, (signature, changed) in list(self._seen.items()):
            if now - changed < self.stable_seconds:
                continue
            self._saw(path)  # catches a change the watcher has not reported yet
            current = self._seen.get(path)
            if current is None or current[0] != signature or open_for_writing(path):
                continue
            del self._seen[path]
            self._admit(path)

    def _admit(self, path: Path) -> None:
        try:
            info, quest = self.quests.admit(path, move=True, default_checks=self.default_checks)
        except QuestRejected as exc:
            self.results.put(IntakeResult(exc.quest_name or printable(path.name), None, str(exc)))
        except Exception as exc:  # it could not even be moved: it stays, and is not retried
            self._given_up.add(path)
            name = printable(path.name)
            reason = f"left in the inbox: it could not be taken ({type(exc).__name__}: {exc})"
            log.warning("%s %s", name, reason)
            self.results.put(IntakeResult(name, None, printable(reason)))
        else:
            self.results.put(IntakeResult(info.name, info, notices=tuple(quest.notices)))

    def _serve_requests(self) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                info, quest = self.quests.admit(
                    request.path,
                    move=False,
                    priority=request.priority,
                    epochs=request.epochs,
                    checks=request.checks,
                    default_checks=self.default_checks,
                )
            except Exception as exc:  # refused, unreadable, anything: the asker hears why
                reason = str(exc) if isinstance(exc, QuestRejected) else f"{type(exc).__name__}: {exc}"
                name = printable(request.path.name)
                self.results.put(IntakeResult(name, None, printable(reason), reply_to=request.reply_to))
            else:
                self.results.put(
                    IntakeResult(info.name, info, notices=tuple(quest.notices), reply_to=request.reply_to)
                )


def open_for_writing(path: Path) -> bool:
    """True when a process we may inspect has ``path`` open for writing (Linux /proc;
    elsewhere, or for other users' processes, the stable-size rule alone decides)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    try:
        target = str(path.resolve(strict=True))
    except (OSError, RuntimeError):
        return False  # a loop or a dangling link: nobody writes it
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        fd_dir = proc / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir / fd) != target:
                    continue
                flags = (proc / pid / "fdinfo" / fd).read_text().split("flags:")[1].split()[0]
            except (OSError, IndexError):
                continue
            if int(flags, 8) & (os.O_WRONLY | os.O_RDWR):
                return True
    return False
