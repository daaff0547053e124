"""`realm`: the command line. One module per command group; each adds its parsers and
sets ``run``, the function that carries the command out.

Nothing here imports torch: `realm play` draws its first frame while the engine process
is still loading it, and every command that needs torch runs engine-side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from tui.cli import (
    bench,
    campaign,
    config,
    evals,
    export,
    heroes,
    oracle,
    play,
    quest,
    serve,
    skills,
    status,
    vault,
)
from tui.cli.common import DEFAULT_HERO, SAVES_ENV, default_saves_root

EPILOG = f"""
Save slots live in SAVES/HERO (default {default_saves_root()}/{DEFAULT_HERO}).
Set {SAVES_ENV} to move the save root. Docs: README.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realm",
        description="Realm of Training: an idle RPG whose hero, DIO, is a language model "
        "that really trains. Losses are battles, checkpoints are loot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (
        play,
        status,
        heroes,
        skills,
        evals,
        quest,
        campaign,
        config,
        vault,
        oracle,
        serve,
        export,
        bench,
    ):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        result: int = args.run(args)
    except BrokenPipeError:  # `realm config get | head`: the reader has gone, and wanted no more
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # the interpreter's final flush must not fail too
        return 1
    except KeyboardInterrupt:
        print("\nrealm: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a read-only or missing folder, a full disk
        where = f" {exc.filename}" if exc.filename else ""
        print(f"realm: {exc.strerror or exc}:{where}".rstrip(":"), file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
