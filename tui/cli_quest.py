"""`realm quest list|add|cancel|retry|priority`: parsed here, carried out by the engine's
side (``python -m engine.questctl``, which needs no torch) so the queue keeps one writer."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PRIORITIES = ("high", "normal", "low")

QUEST_HELP = """\
A quest is a training file (JSON lines). Drop one into saves/<hero>/inbox/ or add it here;
DIO takes quests on in priority order (high, normal, low; first in, first out) and trains
on each for its epochs, mixed with a rehearsal of its skills. Finished quests pay 100 gold.
Formats: {"messages": [...]} (chat), ShareGPT, Alpaca, prompt/completion, text, SY puzzles.
An optional first row {"quest": {"epochs": 2, "checks": "deep", "priority": "high"}} sets
the quest's own settings. Files are never deleted: refused and cancelled ones go to
failed/ with NAME.reason.txt beside them."""


def add_parsers(
    sub: argparse._SubParsersAction, add_hero_args: Callable[[argparse.ArgumentParser], None]
) -> None:  # type: ignore[type-arg]
    quest = sub.add_parser(
        "quest",
        help="list, add, cancel, retry or re-prioritise quests (training files)",
        description=QUEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ops = quest.add_subparsers(dest="quest_command", metavar="ACTION")

    listing = ops.add_parser("list", help="every quest with its state (queued, active, done, failed)")
    add_hero_args(listing)
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per quest (name, state, priority, reason, …)"
    )

    add = ops.add_parser("add", help="validate a file and copy it into the queue")
    add_hero_args(add)
    add.add_argument("file", type=Path, help="a .jsonl file (it is copied; yours stays where it is)")
    add.add_argument("--priority", choices=PRIORITIES, help="default: the file's header, else normal")
    add.add_argument("--epochs", type=int, help="passes over the file (default: the file's header, else 1)")
    add.add_argument(
        "--checks", choices=("standard", "deep"), help="deep also drops answers leaked in their prompt"
    )

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
    prio.add_argument("priority", choices=PRIORITIES)


def cmd_quest(args: argparse.Namespace, root: Path) -> int:
    op = args.quest_command
    if op is None:
        raise SystemExit("realm: usage: realm quest list|add|cancel|retry|priority (see realm quest --help)")
    request: dict[str, object] = {"op": op}
    if op == "list":
        request["json"] = args.json
    elif op == "add":
        path = args.file.expanduser().absolute()
        if args.epochs is not None and args.epochs < 1:
            raise SystemExit("realm: --epochs must be at least 1")
        request.update(path=str(path), priority=args.priority, epochs=args.epochs, checks=args.checks)
    else:
        request["name"] = args.name
        if op == "priority":
            request["priority"] = args.priority
    command = [
        sys.executable,
        "-m",
        "engine.questctl",
        "--save-dir",
        str(root),
        "--request",
        json.dumps(request),
    ]
    return subprocess.call(command)
