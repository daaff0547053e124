"""The quest queue on disk: one folder per state, a file moves between them by rename.

    inbox/                      the user's drop zone (watched; see engine/quests/inbox.py)
    queue/{high,normal,low}/    waiting, first in first out within a priority
    processing/                 the quest DIO trains on (at most one)
    done/                       finished, with its stats
    failed/                     refused or cancelled, with NAME.reason.txt beside it

Each quest file has a hidden sidecar ``.NAME.quest.json`` in the same folder holding its
QuestInfo (priority, epochs, when it was added, stats, reason), so the folder a file is
in *is* its state, and a listing never has to guess which visible files are quests.
Nothing here deletes a user's file. Pure Python: `realm quest` uses it without torch.
The engine is the only writer while it runs; ``realm quest`` writes only while holding
the hero's engine lock (so no engine can start meanwhile).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from engine.protocol.config import QUEST_CHECKS, QUEST_PRIORITIES
from engine.protocol.messages import QuestInfo
from engine.protocol.names import printable, safe_name
from engine.quests.checks import first_look
from engine.quests.format import QuestFile, QuestRejected, read_quest
from engine.store.atomic import move_aside, write_json, write_text

STATES = ("queued", "active", "done", "failed")
REASON_SUFFIX = ".reason.txt"
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", "~")


def ignored_name(name: str) -> bool:
    """Names a writer uses while a file is incomplete, and hidden files."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


class QuestError(Exception):
    """A quest command that cannot be done (unknown name, wrong state)."""


class QuestQueue:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.processing = root / "processing"
        self.done = root / "done"
        self.failed = root / "failed"
        self._lock = threading.RLock()  # the inbox thread and the loop both move files

    def queue(self, priority: str) -> Path:
        return self.root / "queue" / priority

    def create(self) -> None:
        for folder in (self.inbox, self.processing, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        for priority in QUEST_PRIORITIES:
            self.queue(priority).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def folder_of(self, info: QuestInfo) -> Path:
        if info.state == "queued":
            return self.queue(info.priority)
        return {"active": self.processing, "done": self.done, "failed": self.failed}[info.state]

    def path_of(self, info: QuestInfo) -> Path:
        return self.folder_of(info) / info.name

    def _folders(self) -> list[tuple[str, Path]]:
        folders = [("queued", self.queue(p)) for p in QUEST_PRIORITIES]
        return [*folders, ("active", self.processing), ("done", self.done), ("failed", self.failed)]

    def all(self) -> list[QuestInfo]:
        """Every quest: active first, then queued in the order they will run, then
        done (newest first), then failed (newest first)."""
        found: list[QuestInfo] = []
        with self._lock:
            for state, folder in self._folders():
                if not folder.is_dir():
                    continue
                for meta in folder.glob(".*.quest.json"):
                    info = _read_meta(meta, state)
                    if info is not None and os.path.lexists(folder / info.name):  # a dangling link too
                        found.append(info)
        rank = {state: i for i, state in enumerate(("active", "queued", "done", "failed"))}

        def order(q: QuestInfo) -> tuple[Any, ...]:
            if q.state == "queued":
                return (rank[q.state], QUEST_PRIORITIES.index(q.priority), q.added_at, q.name)
            return (rank[q.state], -(q.finished_at or q.added_at), q.name)

        return sorted(found, key=order)

    def get(self, name: str) -> QuestInfo:
        quests = self.all()
        for q in quests:
            if q.name == name:
                return q
        matches = [q for q in quests if Path(q.name).stem == name]
        if len(matches) == 1:
            return matches[0]
        raise QuestError(
            f"no quest named {name!r}" + (" (several match; give the full name)" if matches else "")
        )

    def next_queued(self) -> QuestInfo | None:
        queued = [q for q in self.all() if q.state == "queued"]
        return queued[0] if queued else None

    # ------------------------------------------------------------------ writing

    def admit(
        self,
        source: Path,
        *,
        move: bool,
        priority: str | None = None,
        epochs: int | None = None,
        checks: str | None = None,
        default_checks: str = "standard",
    ) -> tuple[QuestInfo, QuestFile]:
        """Validate ``source`` and queue it (moved from the inbox, or copied for `add`).
        A refused inbox file goes to failed/ with its reason; a refused `add` leaves the
        user's file where it is. Raises QuestRejected either way."""
        with self._lock:
            quests = self.all()  # read once: every sidecar of every folder
            name = self._unique_name(safe_name(source.name), quests)
            renamed = [f"renamed from {printable(source.name)!r}"] if name != source.name else []
            try:
                quest = read_trainable(source)
                self._refuse_duplicate(quest.digest, quests)
            except QuestRejected as exc:
                if move:
                    info = QuestInfo(name=name, state="failed", priority=priority or "normal")
                    self._place(source, info, move=True)
                    self._fail_in_place(replace(info, notices=tuple(renamed)), str(exc))
                    exc.quest_name = name
                raise
            settings = quest.settings
            info = QuestInfo(
                name=name,
                state="queued",
                priority=_choice(
                    priority or settings.get("priority", "normal"), QUEST_PRIORITIES, "priority"
                ),
                rows=len(quest.rows),
                epochs=epochs or settings.get("epochs", 1),
                checks=_choice(checks or settings.get("checks", default_checks), QUEST_CHECKS, "checks"),
                added_at=time.time(),
                notices=(*renamed, *quest.notices),
                digest=quest.digest,
            )
            if info.epochs < 1:
                raise QuestRejected(f"epochs must be at least 1, not {info.epochs}")
            self._place(source, info, move=move)
            return info, quest

    def start(self, info: QuestInfo) -> QuestInfo:
        with self._lock:
            return self._move(info, replace(info, state="active"))

    def update(self, info: QuestInfo) -> None:
        """Write a quest's sidecar (stats while it trains) without moving it."""
        with self._lock:
            self._write_meta(info)

    def finish(self, info: QuestInfo) -> QuestInfo:
        with self._lock:
            return self._move(info, replace(info, state="done", finished_at=time.time()))

    def fail(self, info: QuestInfo, reason: str) -> QuestInfo:
        with self._lock:
            failed = self._move(info, replace(info, state="failed", finished_at=time.time()))
            return self._fail_in_place(failed, reason)

    def requeue(self, info: QuestInfo) -> QuestInfo:
        """An active quest back to its queue (the engine stopped before finishing it).
        Its progress is forgotten: the sidecar's live counter ran ahead of the loot the
        engine resumes from, and the loot's own cursor (if it has one) says where to go on."""
        with self._lock:
            return self._move(info, replace(info, state="queued", seen=0, loss_before=None))

    def set_priority(self, name: str, priority: str) -> QuestInfo:
        _choice(priority, QUEST_PRIORITIES, "priority")
        with self._lock:
            info = self.get(name)
            if info.state == "queued":
                return self._move(info, replace(info, priority=priority))
            changed = replace(info, priority=priority)
            self._write_meta(changed)
            return changed

    def cancel_queued(self, name: str) -> QuestInfo:
        with self._lock:
            info = self.get(name)
            if info.state != "queued":
                raise QuestError(
                    f"{info.name} is {info.state}; only queued or active quests can be cancelled"
                )
            return self.fail(info, "cancelled by the user before it started")

    def retry(self, name: str, default_checks: str = "standard") -> tuple[QuestInfo, QuestFile]:
        """Validate a failed quest's file again, as it is now, and queue it."""
        with self._lock:
            info = self.get(name)
            if info.state != "failed":
                raise QuestError(f"{info.name} is {info.state}; only failed quests can be retried")
            path = self.path_of(info)
            try:
                quest = read_trainable(path)
                self._refuse_duplicate(quest.digest, self.all())
            except QuestRejected as exc:
                self._fail_in_place(info, str(exc))
                raise
            queued = replace(
                info,
                state="queued",
                rows=len(quest.rows),
                seen=0,
                reason="",
                finished_at=None,
                added_at=time.time(),
                notices=tuple(quest.notices),
                loss_before=None,
                loss_after=None,
                tokens=0,
                digest=quest.digest,
                finished_step=None,
            )
            reason_file = _reason_path(path)
            if not _meta_path(reason_file).exists():  # ours, not a quest of that name
                reason_file.unlink(missing_ok=True)
            return self._move(info, queued), quest

    def recover(self) -> tuple[list[QuestInfo], list[str]]:
        """At engine start: quests left in processing/ go back to their queue (they
        resume from the loot's record of them); files put in a queue folder by hand (or
        whose sidecar is unreadable) are adopted, under a safe name. Returns the quests
        moved back, and a line for each file that could not be adopted (it stays where
        it is; nothing here stops the engine)."""
        moved: list[QuestInfo] = []
        problems: list[str] = []
        with self._lock:
            self.create()
            for info in self.all():
                if info.state == "active":
                    moved.append(self.requeue(info))
            for priority in QUEST_PRIORITIES:
                for path in sorted(self.queue(priority).iterdir()):
                    if ignored_name(path.name) or _read_meta(_meta_path(path), "queued") is not None:
                        continue
                    try:
                        self._adopt(path, priority)
                    except OSError as exc:
                        problems.append(
                            f"{printable(path.name)} in queue/{priority} cannot be adopted: {exc}"
                        )
            problems += self._relist_unrecorded()
        return moved, problems

    def _relist_unrecorded(self) -> list[str]:
        """Files in processing/, done/ or failed/ whose record (the sidecar) is gone or
        damaged: listed again rather than hidden. One left in processing/ is queued again
        (it starts over: its progress was in the record); done and failed ones keep their
        state with a note that their stats are unknown. A damaged record is kept aside."""
        said: list[str] = []
        for state, folder in (("active", self.processing), ("done", self.done), ("failed", self.failed)):
            for path in sorted(folder.iterdir()):
                meta = _meta_path(path)
                if (
                    ignored_name(path.name)
                    or path.name.endswith(REASON_SUFFIX)
                    or _read_meta(meta, state) is not None
                ):
                    continue
                if meta.exists():
                    move_aside(meta)
                try:
                    said.append(self._relist(path, state))
                except OSError as exc:
                    said.append(f"{printable(path.name)} in {folder.name}/ cannot be listed again: {exc}")
        return said

    def _relist(self, path: Path, state: str) -> str:
        if state == "active":
            listed = {q.name for q in self.all()}
            free = path.name not in listed and not (self.queue("normal") / path.name).exists()
            target = self.queue("normal") / (path.name if free else self._unique_name(path.name))
            path.rename(target)
            self._adopt(target, "normal")
            return f"quest {target.name}: its record was lost while it trained; queued again from its start"
        when = path.lstat().st_mtime  # a dangling link has no target to stat
        note = "its record could not be read: rows, loss and the step it ended at are unknown"
        info = QuestInfo(
            name=path.name,
            state=state,
            priority="normal",
            added_at=when,
            finished_at=when,
            reason=note if state == "failed" else "",
            notices=(note,),
            # the same file stays refused; a FIFO or a folder (refused ones) is never read
            digest=hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "",
        )
        self._write_meta(info)
        return f"quest {path.name} ({state}): {note}"

    def _adopt(self, path: Path, priority: str) -> None:
        name = safe_name(path.name)
        if name != path.name:
            name = self._unique_name(name)
            path = path.rename(path.with_name(name))
        info = QuestInfo(name=name, state="queued", priority=priority, added_at=path.stat().st_mtime)
        self._write_meta(info)

    def _refuse_duplicate(self, digest: str, quests: list[QuestInfo]) -> None:
        """The same content again is not a new quest (it would be paid twice)."""
        for quest in quests:
            if quest.digest != digest or quest.state == "failed":
                continue
            when = {
                "done": f"done at step {quest.finished_step}" if quest.finished_step is not None else "done",
                "active": "in progress",
                "queued": "queued",
            }[quest.state]
            raise QuestRejected(f"same content as quest {quest.name} ({when})")

    # ------------------------------------------------------------------ internals

    def _unique_name(self, name: str, quests: list[QuestInfo] | None = None) -> str:
        """``name``, or ``stem-N.ext``: a name no quest has, and whose own files (its
        reason file, its sidecar, its copy in progress) would not land on a file that is
        already there, and that is not itself another quest's reason file."""
        taken = {q.name for q in (self.all() if quests is None else quests)}
        stem, suffix = Path(name).stem, Path(name).suffix
        candidate, n = name, 2
        while candidate in taken or self._occupied(candidate):
            candidate = f"{stem}-{n}{suffix}"
            n += 1
        return candidate

    def _occupied(self, name: str) -> bool:
        derived = (name, f"{name}{REASON_SUFFIX}", f".{name}.quest.json", f".tmp-{name}")
        base = name[: -len(REASON_SUFFIX)] if name.endswith(REASON_SUFFIX) else None
        for _, folder in self._folders():
            if any(os.path.lexists(folder / n) for n in derived):
                return True
            if base and os.path.lexists(folder / base):
                return True
        return False

    def _place(self, source: Path, info: QuestInfo, move: bool) -> None:
        target = self.path_of(info)
        if move:
            os.replace(source, target)
        else:
            # Copy under a hidden name, fsync, rename: a crash leaves no half file.
            tmp = target.with_name(f".tmp-{info.name}")
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
        self._write_meta(info)

    def _move(self, old: QuestInfo, new: QuestInfo) -> QuestInfo:
        source, target = self.path_of(old), self.path_of(new)
        if source != target:
            self._write_meta(new)  # the new sidecar first: a crash between leaves the file findable
            os.replace(source, target)
            _meta_path(source).unlink(missing_ok=True)
        else:
            self._write_meta(new)
        return new

    def _fail_in_place(self, info: QuestInfo, reason: str) -> QuestInfo:
        reason = printable(reason)
        failed = replace(info, state="failed", reason=reason, finished_at=time.time())
        self._write_meta(failed)
        reason_file = _reason_path(self.path_of(failed))
        # Never over a user's file: a file of that name that is a quest keeps it (the
        # reason is in the sidecar either way).
        if not _meta_path(reason_file).exists():
            write_text(reason_file, reason + "\n")
        return failed

    def _write_meta(self, info: QuestInfo) -> None:
        data = asdict(info)
        data.pop("state")  # the folder says it
        write_json(_meta_path(self.path_of(info)), data)


def _meta_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.quest.json")


def _reason_path(path: Path) -> Path:
    return path.with_name(f"{path.name}{REASON_SUFFIX}")


def _read_meta(meta: Path, state: str) -> QuestInfo | None:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    fields = {k: v for k, v in data.items() if k in QuestInfo.__dataclass_fields__}
    fields["notices"] = tuple(fields.get("notices", ()))
    fields["state"] = state
    try:
        return QuestInfo(**fields)
    except TypeError:
        return None


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise QuestRejected(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def read_trainable(path: Path) -> QuestFile:
    """The quest file with its rows that can train: read_quest, less the rows the cheap
    checks drop (empty answers, exact duplicates; named in its notices, so the reply to
    `realm quest add` and the board count what will train). Raises QuestRejected when no
    row is left."""
    quest = read_quest(path)
    look = first_look(quest.rows, quest.lines)
    quest.rows = [quest.rows[i] for i in look.kept]
    quest.lines = [quest.lines[i] for i in look.kept]
    quest.notices.extend(look.notices())
    return quest
