"""`realm quest …` carried out on the engine's side (no torch is imported here).

The game's CLI (tui/cli.py) parses the command line and runs
``python -m engine.questctl --save-dir DIR --request JSON``. Here:

- when the hero's engine is running, the request goes to it over the socket as a quest
  command (the engine is the single writer of the queue) and its reply is printed;
- when it is not, the hero's engine lock is taken (so none can start meanwhile) and the
  queue on disk is changed directly, by the same QuestQueue code the engine uses.

Exit status: 0 done, 1 refused (the message says why), 2 bad request.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
import time
from dataclasses import asdict
from multiprocessing.connection import Client
from pathlib import Path
from typing import IO, Any

from engine import protocol as p
from engine.quest_format import QuestRejected
from engine.quests import QuestError, QuestQueue

CONNECT_WAIT = 60.0  # an engine that holds the lock may still be loading torch
REPLY_WAIT = 300.0  # a large file is validated before the reply


def quest_record(info: p.QuestInfo) -> dict[str, Any]:
    """One line of `realm quest list --json`."""
    row = asdict(info)
    row["notices"] = list(info.notices)
    row["total"] = info.total
    row["epoch"] = info.epoch
    return row


def describe(info: p.QuestInfo) -> str:
    if info.state == "active":
        detail = f"{info.seen}/{info.total} rows, epoch {info.epoch}/{info.epochs}"
    elif info.state == "failed":
        detail = info.reason
    elif info.state == "done":
        before = f"{info.loss_before:.3f}" if info.loss_before is not None else "?"
        after = f"{info.loss_after:.3f}" if info.loss_after is not None else "?"
        detail = f"{info.rows} rows × {info.epochs}, loss {before} → {after}"
    else:
        detail = f"{info.rows} rows × {info.epochs} epoch(s), checks {info.checks}"
    return f"{info.state:<7} {info.priority:<6} {info.name:<32} {detail}"


def try_lock(root: Path) -> IO[str] | None:
    """The engine's lock, or None when an engine holds it (it is running)."""
    handle = open(root / p.LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def to_command(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "add":
        return p.AddQuest(
            path=str(Path(request["path"]).resolve()),
            priority=request.get("priority") or "normal",
            epochs=request.get("epochs"),
            checks=request.get("checks"),
        )
    if op == "cancel":
        return p.CancelQuest(request["name"])
    if op == "retry":
        return p.RetryQuest(request["name"])
    if op == "priority":
        return p.SetQuestPriority(request["name"], request["priority"])
    raise ValueError(f"unknown quest operation {op!r}")


def online(root: Path, request: dict[str, Any]) -> tuple[bool, str, tuple[p.QuestInfo, ...]]:
    """Ask the running engine; returns (ok, message, the board)."""
    deadline = time.monotonic() + CONNECT_WAIT
    while True:
        try:
            key = (root / p.AUTHKEY_NAME).read_bytes()
            conn = Client(str(p.socket_path(root)), family="AF_UNIX", authkey=key)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # still waking up
    with conn:
        conn.send(p.Hello(client="realm quest", watcher=False))
        snapshot = _wait(conn, (p.Snapshot, p.HandshakeError), CONNECT_WAIT)
        if isinstance(snapshot, p.HandshakeError):
            return False, snapshot.reason, ()
        if request["op"] == "list":
            return True, "", snapshot.quests
        conn.send(to_command(request))
        reply = _wait(conn, (p.QuestReply, p.CommandRejected), REPLY_WAIT)
        if isinstance(reply, p.CommandRejected):
            return False, reply.reason, ()
        board = snapshot.quests
        if reply.ok:
            # the engine broadcasts the new board right after its reply
            later = _wait(conn, (p.QuestBoard,), 5.0, missing_ok=True)
            board = later.quests if later is not None else board
        with contextlib.suppress(OSError):
            conn.send(p.Goodbye())
        return reply.ok, reply.message, board


def _wait(conn: Any, kinds: tuple[type, ...], timeout: float, missing_ok: bool = False) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.poll(0.2):
            event = conn.recv()
            if isinstance(event, kinds):
                return event
            if isinstance(event, p.Stopped):
                raise ConnectionError("the engine stopped before it answered")
    if missing_ok:
        return None
    raise TimeoutError(f"the engine did not answer within {timeout:.0f}s")


def offline(root: Path, request: dict[str, Any]) -> tuple[bool, str, tuple[p.QuestInfo, ...]]:
    """No engine: change the queue on disk directly (we hold the engine lock)."""
    queue = QuestQueue(root)
    queue.create()
    op = request["op"]
    checks = request.get("checks")
    message = ""
    try:
        if op == "add":
            info, quest = queue.admit(
                Path(request["path"]),
                move=False,
                priority=request.get("priority"),
                epochs=request.get("epochs"),
                checks=checks,
            )
            extra = f" ({'; '.join(quest.notices)})" if quest.notices else ""
            message = f"{info.name} queued ({info.priority}, {info.rows} rows){extra}; DIO takes it on when training"
        elif op == "cancel":
            info = queue.get(request["name"])
            if info.state == "active":  # left by a stopped engine: nobody trains it now
                info = queue.fail(info, f"cancelled by the user at row {info.seen}")
            else:
                info = queue.cancel_queued(request["name"])
            message = f"{info.name} cancelled; its file is in failed/"
        elif op == "retry":
            info, _ = queue.retry(request["name"])
            message = f"{info.name} is queued again ({info.rows} rows)"
        elif op == "priority":
            info = queue.set_priority(request["name"], request["priority"])
            message = f"{info.name} is now {info.priority} priority"
        elif op != "list":
            raise ValueError(f"unknown quest operation {op!r}")
    except (QuestRejected, QuestError, OSError) as exc:
        name = Path(request.get("path") or "").name or request.get("name", "")
        return False, f"{name} refused: {exc}" if op in ("add", "retry") else str(exc), tuple(queue.all())
    return True, message, tuple(queue.all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.questctl")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument(
        "--request", required=True, help="JSON: op, name, path, priority, epochs, checks, json"
    )
    args = parser.parse_args(argv)
    try:
        request = json.loads(args.request)
        request["op"]
    except (ValueError, KeyError, TypeError):
        print("bad request", file=sys.stderr)
        return 2
    root: Path = args.save_dir
    if not root.is_dir():
        print(f"no hero at {root} (run `realm play` or `realm train` first)", file=sys.stderr)
        return 1
    lock = try_lock(root)
    try:
        if lock is None:
            ok, message, board = online(root, request)
        else:
            ok, message, board = offline(root, request)
    except (OSError, TimeoutError, ConnectionError, ValueError) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.close()
    if request["op"] == "list":
        for info in board:
            print(json.dumps(quest_record(info)) if request.get("json") else describe(info))
        if not board and not request.get("json"):
            print("No quests. Drop a .jsonl file into the inbox or run `realm quest add FILE`.")
        return 0
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
