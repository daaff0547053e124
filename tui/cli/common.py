"""What every `realm` command shares: where saves live, the --hero/--saves flags, and
how a command fails (one clear line on stderr and a non-zero exit, never a traceback)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.protocol.savedir import SaveDir, is_hero_name

SAVES_ENV = "REALM_SAVES"


def at_least(minimum: float, kind: type[int] | type[float] = int) -> Any:
    """An argparse ``type`` for a count or a length: a number (whole unless ``kind`` is
    float) no smaller than ``minimum``, else argparse's one-line usage error naming the
    flag (not a traceback or a silent nothing further on)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole ' if kind is int else ''}number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below {minimum:g}")
        return value

    return parse


DEFAULT_HERO = "dio"


def default_saves_root() -> Path:
    """``saves/`` of the checkout when running from one, else a per-user folder."""
    env = os.environ.get(SAVES_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() and (checkout / "saves").is_dir():
        return checkout / "saves"
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return data / "realm" / "saves"


def add_hero_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hero", default=DEFAULT_HERO, help=f"save slot name (default: {DEFAULT_HERO})")
    parser.add_argument(
        "--saves",
        type=Path,
        default=None,
        help=f"save root folder (default: ${SAVES_ENV}, else {default_saves_root()})",
    )


def hero_folders(root: Path) -> list[Path]:
    """The heroes' save folders under ``root``: each has a config.json. A model folder
    put there (an export, a downloaded model: its config.json names a model_type) is not
    a hero; a hero whose config.json is damaged still is (`realm status` says what is
    wrong with it)."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        config = folder / "config.json"
        if not config.is_file():
            continue
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not (isinstance(data, dict) and ("model_type" in data or "architectures" in data)):
            found.append(folder)
    return found


def save_from(args: argparse.Namespace) -> SaveDir:
    """The hero's save folder named by --hero and --saves."""
    if not is_hero_name(args.hero):
        raise SystemExit(f"realm: --hero {args.hero!r} must be a plain name like 'dio'")
    root = (args.saves.expanduser() if args.saves else default_saves_root()).absolute()
    return SaveDir(root / args.hero)


EXIT_ENGINE_RUNNING = 3  # an engine-side offline command found the engine's lock taken


def engine_side(module: str, args: list[str], what: str) -> dict[str, Any] | None:
    """Run an engine-side command with DIO resting (``python -m MODULE ARGS``, which takes
    the engine's lock where it writes): the JSON object its last line prints. None when an
    engine holds the lock (started meanwhile): ask it over the socket instead."""
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if done.returncode == EXIT_ENGINE_RUNNING:
        return None
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"realm: {done.stderr.strip() or f'the {what} command failed'}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
