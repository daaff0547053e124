"""`realm config get [KEY]` and `realm config set KEY VALUE`: the hero's settings.

Reading is the hero's config.json (or the defaults of a hero not made yet). Changing goes
to the running engine (it checks the value, writes the file and applies what it can from
its next step) or, with DIO resting, to ``python -m engine.run.settings_work`` under the
engine's lock. The Armory screen (`m` in the game) changes the same settings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from engine.protocol import messages as p
from engine.protocol import settings
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.config import HeroConfig
from engine.protocol.names import printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, engine_side, save_from

CONFIG_HELP = """\
Settings are keys like train.lr, game.eval_every, vault.keep_last, watchdog.enabled,
and game.skills.ID for a skill's weight in the mix (0 takes it out). `realm config get`
lists every key with its value, when a change applies and what it does.

A change is checked like the file (a wrong type, a value out of range and an unknown key
are refused with the reason). Some apply from DIO's next step (learning rate, clip, the
skill mix, eval and loot cadence, the vault and watchdog rules); the others (batch, row
length, schedule, LoRA, precision…) are saved and apply when DIO next starts. A change of
the batch shape prints the memory estimate it would need."""


def add_parsers(sub: Any) -> None:
    config = sub.add_parser(
        "config",
        help="read or change the hero's settings (learning rate, skill mix, evals, vault…)",
        description=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.set_defaults(run=cmd_config)
    ops = config.add_subparsers(dest="config_command", metavar="ACTION")
    get = ops.add_parser("get", help="every setting, or one (KEY), with when a change applies")
    add_hero_args(get)
    get.add_argument(
        "key", nargs="?", help="a key like train.lr (its value alone), or a section like train (default: all)"
    )
    get.add_argument("--json", action="store_true", help="print the values as one JSON object")
    put = ops.add_parser("set", help="change one setting, checked (e.g. realm config set train.lr 5e-4)")
    add_hero_args(put)
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument(
        "--dry-run", action="store_true", help="check the value (and its memory); change nothing"
    )


def hero_config(save: SaveDir) -> HeroConfig:
    """The hero's settings; a hero not made yet has the defaults."""
    if not save.config.exists():
        return HeroConfig(name=save.root.name)
    try:
        return HeroConfig.load(save.config)
    except ValueError as exc:  # it names the file and the field
        raise SystemExit(f"realm: {exc}") from None


def cmd_get(save: SaveDir, key: str | None, as_json: bool) -> int:
    config = hero_config(save)
    every = settings.all_keys(config)
    section = [k for k in every if key is not None and k.startswith(f"{key.rstrip('.')}.")]
    keys = every if key is None else section or [key]
    try:
        values = {k: settings.get_value(config, k) for k in keys}
    except settings.SettingError as exc:
        print(printable(str(exc)), file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(values))
        return 0
    if key is not None and not section:  # one value alone: `lr=$(realm config get train.lr)`
        print(printable(settings.show(values[key])))
        return 0
    print_table(config, values)
    return 0


def print_table(config: HeroConfig, values: dict[str, Any]) -> None:
    """Key, value, when a change applies, and what it does, wrapped under its column (a
    description cut at the screen's edge told half of it)."""
    width = max(len(k) for k in values)
    lead = width + 2 + 10 + 2 + 7 + 2
    room = max(shutil.get_terminal_size().columns - lead, 30)
    for k, value in values.items():
        when = "now    " if settings.applies(k) == "now" else "restart"
        lines = textwrap.wrap(settings.describe(config, k), room) or [""]
        print(printable(f"{k:<{width}}  {settings.show(value):<10}  {when}  {lines[0]}"))
        for line in lines[1:]:
            print(printable(f"{'':<{lead}}{line}"))
    print("\n`now`: applies from DIO's next step; `restart`: saved, applies when the hero next starts.")


def online(save: SaveDir, command: p.SetConfig) -> tuple[bool, str]:
    with EngineClient.connect_waiting(save) as client:
        client.hello(client="realm config", watcher=False)
        reply = client.request(command, (p.ConfigReply, p.CommandRejected), 60.0)
        client.close(goodbye=True)
    if isinstance(reply, p.CommandRejected):
        return False, reply.reason
    return reply.ok, reply.message


def cmd_set(save: SaveDir, key: str, value: str, dry_run: bool) -> int:
    result: tuple[bool, str] | None = None
    if save.engine_pid() is None:
        args = ["--save-dir", str(save.root), *(["--dry-run"] if dry_run else []), key, value]
        answer = engine_side("engine.run.settings_work", args, "config")
        result = None if answer is None else (answer["ok"], answer["message"])
    if result is None:
        try:
            result = online(save, p.SetConfig(key, value, dry_run))
        except (OSError, TimeoutError, EngineGone) as exc:
            print(f"could not reach the engine: {exc}", file=sys.stderr)
            return 1
    ok, message = result
    print(printable(message), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def cmd_config(args: argparse.Namespace) -> int:
    action = args.config_command
    if action is None:
        raise SystemExit("realm: usage: realm config get [KEY] | set KEY VALUE (see realm config --help)")
    save = save_from(args)
    if action == "get":
        return cmd_get(save, args.key, args.json)
    return cmd_set(save, args.key, args.value, args.dry_run)
