"""`realm quest list|add|cancel|retry|priority`.

With the hero's engine running, the command goes to it over the one client (the engine
is the single writer of the queue). With it down, ``python -m engine.quests.commands``
(no torch) changes the queue on disk under the engine's lock, with the same dispatcher
the engine uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.config import QUEST_CHECKS, QUEST_PRIORITIES
from engine.protocol.names import counted, printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, engine_side, save_from

REPLY_WAIT = 300.0  # a large file is validated before the reply

QUEST_HELP = """\
A quest is a training file (JSON lines). Drop one into saves/<hero>/inbox/ or add it here;
DIO takes quests on in priority order (high, normal, low; first in, first out) and trains
on each for its epochs, mixed with a rehearsal of its skills. Finished quests pay 100 gold.
Formats: {"messages": [...]} (chat), ShareGPT, Alpaca, prompt/completion, text, SY puzzles.
An optional first row {"quest": {"epochs": 2, "checks": "deep", "priority": "high"}} sets
the quest's own settings. Files are never deleted: refused and cancelled ones go to
failed/ with NAME.reason.txt beside them."""


def add_parsers(sub: Any) -> None:
    quest = sub.add_parser(
        "quest",
        help="list, add, cancel, retry or re-prioritise quests (training files)",
        description=QUEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    quest.set_defaults(run=cmd_quest)
    ops = quest.add_subparsers(dest="quest_command", metavar="ACTION")

    listing = ops.add_parser("list", help="every quest with its state (queued, active, done, failed)")
    add_hero_args(listing)
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per quest (name, state, priority, reason, …)"
    )

    add = ops.add_parser(
        "add",
        help="validate a file and copy it into the queue",
        description="Every row must be one known shape: chat messages (OpenAI), ShareGPT "
        "conversations, Alpaca (instruction/input/output), Dolly (instruction/context/response), "
        "prompt/completion or prompt/response, question/answer, input/output, text, or the "
        "reference BIN and SY rows; a file that is not is refused whole, naming the line. "
        "README.md, Quests, has the table.",
    )
    add_hero_args(add)
    add.add_argument(
        "file",
        help="a .jsonl file, or a .json array of rows (it is copied; yours stays where it is); "
        "- reads the rows piped in (python make_rows.py | realm quest add -)",
    )
    add.add_argument("--priority", choices=QUEST_PRIORITIES, help="default: the file's header, else normal")
    add.add_argument("--epochs", type=int, help="passes over the file (default: the file's header, else 1)")
    add.add_argument("--checks", choices=QUEST_CHECKS, help="deep also drops answers leaked in their prompt")

    for name, text in (
        ("cancel", "take a queued or active quest off the board (its file goes to failed/)"),
        ("retry", "validate a failed quest's file again (fix it in failed/ first) and queue it"),
    ):
        op = ops.add_parser(name, help=text)
        add_hero_args(op)
        op.add_argument("name", help="the quest's file name (the extension may be left out)")

    prio = ops.add_parser("priority", help="move a quest to another priority")
    add_hero_args(prio)
    prio.add_argument("name", help="the quest's file name")
    prio.add_argument("priority", choices=QUEST_PRIORITIES)


def to_command(args: argparse.Namespace) -> p.QuestCommand | None:
    """The protocol command for the command line (None: just list)."""
    match args.quest_command:
        case "list":
            return None
        case "add":
            if args.epochs is not None and args.epochs < 1:
                raise SystemExit("realm: --epochs must be at least 1")
            if "://" in args.file:  # a data set's page or an hf:// path: nothing here downloads
                raise SystemExit(
                    f"realm: {args.file} is an address: quests are files here; download it first"
                )
            path = str(Path(args.file).expanduser().absolute())
            return p.AddQuest(path, args.priority, args.epochs, args.checks)
        case "cancel":
            return p.CancelQuest(args.name)
        case "retry":
            return p.RetryQuest(args.name)
        case "priority":
            return p.SetQuestPriority(args.name, args.priority)
    raise SystemExit("realm: usage: realm quest list|add|cancel|retry|priority (see realm quest --help)")


def online(save: SaveDir, command: p.QuestCommand | None) -> tuple[bool, str, tuple[p.QuestInfo, ...]]:
    """Ask the running engine; returns (ok, message, the board)."""
    with EngineClient.connect_waiting(save) as client:
        snapshot = client.hello(client="realm quest", watcher=False)
        if command is None:
            return True, "", snapshot.quests
        reply = client.request(command, (p.QuestReply, p.CommandRejected), REPLY_WAIT)
        if isinstance(reply, p.CommandRejected):
            return False, reply.reason, ()
        board = snapshot.quests
        if reply.ok:
            with contextlib.suppress(TimeoutError):  # the new board follows the reply
                board = client.wait_for(p.QuestBoard, 5.0).quests
        client.close(goodbye=True)
        return reply.ok, reply.message, board


def offline(
    save: SaveDir, command: p.QuestCommand | None
) -> tuple[bool, str, tuple[p.QuestInfo, ...]] | None:
    """The engine is down: change the queue engine-side under its lock (None: an engine
    started meanwhile)."""
    args = ["--save-dir", str(save.root)]
    if command is not None:
        args += ["--command", json.dumps(p.command_to_dict(command))]
    answer = engine_side("engine.quests.commands", args, "quest")
    if answer is None:
        return None
    board = tuple(p.QuestInfo(**{**row, "notices": tuple(row.get("notices", ()))}) for row in answer["board"])
    return answer["ok"], answer["message"], board


def quest_record(info: p.QuestInfo) -> dict[str, Any]:
    """One line of `realm quest list --json`."""
    row = {f: getattr(info, f) for f in p.QuestInfo.__dataclass_fields__}
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
        detail = f"{counted(info.rows, 'row')} × {info.epochs}, loss {before} → {after}"
        detail += f", {info.outcome}" if info.outcome else ""
    else:
        detail = f"{counted(info.rows, 'row')} × {counted(info.epochs, 'epoch')}, checks {info.checks}"
    return printable(f"{info.state:<7} {info.priority:<6} {info.name:<32} {detail}")


def cmd_quest(args: argparse.Namespace) -> int:
    if args.quest_command is None:
        raise SystemExit("realm: usage: realm quest list|add|cancel|retry|priority (see realm quest --help)")
    save = save_from(args)
    if not save.root.is_dir():
        print(save.no_hero, file=sys.stderr)
        return 1
    if args.quest_command == "add" and args.file == "-":
        with tempfile.TemporaryDirectory(prefix="realm-quest-") as folder:
            args.file = str(piped_rows(Path(folder)))
            return run_quest_command(args, save)
    return run_quest_command(args, save)


def piped_rows(folder: Path) -> Path:
    """What was piped into `realm quest add -`, as a file the engine can copy (named for
    when it came: the quest's name)."""
    if sys.stdin.isatty():
        raise SystemExit("realm: - reads rows piped in (python make_rows.py | realm quest add -); none are")
    path = folder / time.strftime("stdin-%Y%m%d-%H%M%S.jsonl")
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out)
    return path


def run_quest_command(args: argparse.Namespace, save: SaveDir) -> int:
    command = to_command(args)
    try:
        result = None if save.engine_pid() is not None else offline(save, command)
        if result is None:
            result = online(save, command)
    except (OSError, TimeoutError, EngineGone) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1
    ok, message, board = result
    if command is None:
        for info in board:
            print(json.dumps(quest_record(info)) if args.json else describe(info))
        if not board and not args.json:
            print("No quests. Drop a .jsonl file into the inbox or run `realm quest add FILE`.")
        return 0
    print(printable(message), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
