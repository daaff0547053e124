"""What every `realm` command shares: where saves live, the --hero/--saves flags, and
how a command fails (one clear line on stderr and a non-zero exit, never a traceback)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.protocol.savedir import SaveDir

SAVES_ENV = "REALM_SAVES"
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


def save_from(args: argparse.Namespace) -> SaveDir:
    """The hero's save folder named by --hero and --saves."""
    if "/" in args.hero or args.hero.startswith(".") or not args.hero:
        raise SystemExit(f"realm: --hero {args.hero!r} must be a plain name like 'dio'")
    root = (args.saves.expanduser() if args.saves else default_saves_root()).absolute()
    return SaveDir(root / args.hero)
