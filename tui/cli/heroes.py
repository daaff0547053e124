"""`realm heroes`: every save slot (name, model, mode, step, size on disk, state), and
`realm heroes delete NAME` to remove one (asked first; refused while it trains)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from engine.protocol.model_folder import shown_name
from engine.protocol.savedir import SaveDir, is_hero_name
from tui.cli.common import default_saves_root, hero_folders
from tui.cli.status import from_loot_folders, life_state


def add_parsers(sub: Any) -> None:
    heroes = sub.add_parser(
        "heroes",
        help="list the save slots (heroes); delete one",
        description="Without an action: one line per hero in the save root (name, model, "
        "mode, step, size on disk, state).",
    )
    heroes.add_argument("--saves", type=Path, default=None, help="save root (default: as for play)")
    heroes.add_argument("--json", action="store_true", help="one JSON object per hero")
    heroes.set_defaults(run=cmd_heroes)
    ops = heroes.add_subparsers(dest="heroes_command", metavar="ACTION")
    delete = ops.add_parser("delete", help="remove a hero's save folder (loot, ledger, quests)")
    delete.add_argument("name", help="the hero's name")
    delete.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    delete.add_argument("--saves", type=Path, default=None, help="save root (default: as for play)")


def root_of(args: argparse.Namespace) -> Path:
    return (args.saves.expanduser() if args.saves else default_saves_root()).absolute()


def hero_row(save: SaveDir) -> dict[str, Any]:
    config, status, pid = save.read_config(), save.read_status() or from_loot_folders(save), save.engine_pid()
    return {
        "name": save.name,
        "model": shown_name(config.get("model") or "hatchling"),
        "mode": config.get("mode", "full"),
        "step": max(int(status.get("step") or 0), 0),
        "size_bytes": save.disk_bytes(),
        "state": life_state(status, pid),
        "refused": bool(status.get("refused")) and pid is None,  # crashed: it would not start
        "pid": pid,
        # when the game last showed it or its engine last wrote: the start screen's cursor
        "played_at": max(float(status.get("last_watched") or 0), float(status.get("updated_at") or 0)),
    }


def state_word(row: dict[str, Any]) -> str:
    """A hero_row's state as the list and the start screen show it."""
    return "would not start" if row.get("refused") else str(row["state"])


def cmd_heroes(args: argparse.Namespace) -> int:
    root = root_of(args)
    if args.heroes_command == "delete":
        if not is_hero_name(args.name):  # "../x" would name a folder outside the root
            print(f"realm: {args.name!r} is not a hero's name: one plain name like 'dio'", file=sys.stderr)
            return 1
        return delete(SaveDir(root / args.name), args.yes)
    folders = hero_folders(root)
    saves = [SaveDir(folder) for folder in folders]
    if not saves:
        print(f"No heroes in {root} yet. `realm play` hatches DIO.")
        return 0
    rows = [hero_row(save) for save in saves]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'hero':16} {'model':28} {'mode':5} {'step':>9} {'size':>9}  state")
    for r in rows:
        model = r["model"] if len(r["model"]) <= 28 else "…" + r["model"][-27:]
        size = f"{r['size_bytes'] / 2**20:,.1f} MB"
        print(f"{r['name']:16} {model:28} {r['mode']:5} {r['step']:>9,} {size:>9}  {state_word(r)}")
    return 0


def delete(save: SaveDir, yes: bool) -> int:
    if not save.config.is_file():
        print(f"realm: no hero {save.name!r} in {save.root.parent}", file=sys.stderr)
        return 1
    if save.engine_pid() is not None:
        print(f"realm: {save.name} is training; `realm stop --hero {save.name}` first", file=sys.stderr)
        return 1
    size = save.disk_bytes() / 2**20
    if not yes:
        if not sys.stdin.isatty():
            print("realm: deleting a hero needs --yes when nobody can be asked", file=sys.stderr)
            return 1
        answer = input(f"Delete {save.name} and all its loot ({size:,.1f} MB)? Type its name to confirm: ")
        if answer.strip() != save.name:
            print("Kept.")
            return 1
    lock = save.try_lock()  # no engine may start while the folder goes
    if lock is None:
        print(f"realm: {save.name} is training; `realm stop --hero {save.name}` first", file=sys.stderr)
        return 1
    try:
        shutil.rmtree(save.root)
    finally:
        lock.close()
    print(f"Deleted {save.name} ({size:,.1f} MB).")
    return 0
