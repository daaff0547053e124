"""`realm export`: a loot as a plain Hugging Face model folder (run engine-side: it
loads torch, this process must not)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from tui.cli.common import add_hero_args, save_from


def add_parsers(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write a loot as a plain Hugging Face model folder (LoRA adapters merged)",
        description="Copy a loot (default: the newest of the current line of training) into a new folder that loads with "
        "AutoModelForCausalLM.from_pretrained. For lora/qlora heroes the adapters are merged "
        "into the base weights. Works while DIO trains.",
    )
    add_hero_args(export)
    export.add_argument("dest", type=Path, help="a new folder")
    export.add_argument(
        "--loot",
        help="loot: 250, step-000250, latest or best-bin (default: the newest of the current line; a rewind sets newer loot aside)",
    )
    export.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "engine.model.export", "--save-dir", str(save_from(args).root)]
    if args.loot:
        cmd += ["--loot", args.loot]
    return subprocess.call([*cmd, str(args.dest.expanduser().absolute())])
