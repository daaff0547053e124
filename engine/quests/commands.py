"""Quest commands, carried out in one place for both paths:

- online, inside the engine (``QuestKeeper.command`` calls ``carry_out``, except that
  ``AddQuest`` is validated on the inbox thread so a large file never stalls training);
- offline, `realm quest …` with the hero's engine down: the game's CLI runs
  ``python -m engine.quests.commands --save-dir DIR --command JSON`` (no torch), which
  takes the hero's engine lock, so no engine can start meanwhile, and changes the queue
  on disk with the same code.

With the engine up, `realm quest` talks to it directly (``engine.protocol.client``).
Offline exit status: 0 done, 1 refused (the message says why), 2 bad request,
3 an engine holds the lock (ask it instead). The last line printed is one JSON object:
``{"ok", "message", "board": [QuestInfo as a dict, …]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from typing_extensions import assert_never

from engine.protocol import messages as p
from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir
from engine.quests.format import QuestRejected
from engine.quests.queue import QuestError, QuestQueue

EXIT_ENGINE_RUNNING = 3


def queued_message(info: p.QuestInfo, notices: tuple[str, ...] | list[str]) -> str:
    extra = f" ({'; '.join(notices)})" if notices else ""
    return f"{info.name} queued ({info.priority}, {counted(info.rows, 'row')}){extra}"


def carry_out(
    queue: QuestQueue,
    command: p.QuestCommand,
    default_checks: str = "standard",
    cancel_active: Callable[[str], p.QuestInfo | None] | None = None,
) -> tuple[str, p.QuestInfo]:
    """Carry out one quest command; returns the reply and the quest after it. Raises QuestRejected (the file
    was refused), QuestError (unknown name, wrong state) or OSError.

    ``cancel_active`` lets the engine cancel the quest it is training (it returns the
    cancelled quest, or None when ``name`` is not that quest)."""
    match command:
        case p.AddQuest():
            info, quest = queue.admit(
                Path(command.path),
                move=False,
                priority=command.priority,
                epochs=command.epochs,
                checks=command.checks,
                default_checks=default_checks,
            )
            return queued_message(info, quest.notices), info
        case p.CancelQuest():
            cancelled = cancel_active(command.name) if cancel_active is not None else None
            if cancelled is None:
                info = queue.get(command.name)
                if info.state == "active":  # left by a stopped engine: nobody trains it now
                    cancelled = queue.fail(info, f"cancelled by the user at row {info.seen}")
                else:
                    cancelled = queue.cancel_queued(command.name)
            return f"{cancelled.name} cancelled; its file is in failed/", cancelled
        case p.RetryQuest():
            info, _ = queue.retry(command.name, default_checks)
            return f"{info.name} is queued again ({counted(info.rows, 'row')})", info
        case p.SetQuestPriority():
            info = queue.set_priority(command.name, command.priority)
            return f"{info.name} is now {info.priority} priority", info
        case _:
            assert_never(command)


def refusal(command: p.QuestCommand, exc: Exception) -> str:
    """The reply to a refused command, naming the file for add and retry."""
    if isinstance(command, p.AddQuest):
        return f"{Path(command.path).name} refused: {exc}"
    if isinstance(command, p.RetryQuest):
        return f"{command.name} refused: {exc}"
    return str(exc)


def info_dict(info: p.QuestInfo) -> dict[str, Any]:
    row = asdict(info)
    row["notices"] = list(info.notices)
    return row


def offline(save: SaveDir, command: p.QuestCommand | None) -> tuple[bool, str, list[p.QuestInfo]]:
    """With the engine down (the caller holds its lock): change the queue on disk.
    ``command`` None only lists."""
    queue = QuestQueue(save.root)
    queue.create()
    message = ""
    ok = True
    if command is not None:
        default_checks = save.read_config().get("game", {}).get("quest_checks", "standard")
        try:
            message, _ = carry_out(queue, command, default_checks)
        except (QuestRejected, QuestError, OSError) as exc:
            ok, message = False, refusal(command, exc)
        else:
            if isinstance(command, p.AddQuest):
                message += "; DIO takes it on when training"
    return ok, message, queue.all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.quests.commands")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--command", help="a quest command as JSON (messages.command_to_dict); none: list")
    args = parser.parse_args(argv)
    command: p.QuestCommand | None = None
    if args.command:
        try:
            parsed = p.command_from_dict(json.loads(args.command))
        except ValueError as exc:
            print(f"bad request: {exc}", file=sys.stderr)
            return 2
        if not isinstance(parsed, p.QuestCommand):
            print(f"bad request: {type(parsed).__name__} is not a quest command", file=sys.stderr)
            return 2
        command = parsed
    save = SaveDir(args.save_dir)
    if not save.root.is_dir():
        print(save.no_hero, file=sys.stderr)
        return 1
    lock = save.try_lock()
    if lock is None:
        return EXIT_ENGINE_RUNNING
    try:
        ok, message, board = offline(save, command)
    finally:
        lock.close()
    print(json.dumps({"ok": ok, "message": message, "board": [info_dict(q) for q in board]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
