"""`realm serve`: an OpenAI-compatible HTTP server for the hero's loot (engine-side:
it loads torch; this process must not)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tui.cli.common import add_hero_args, save_from

DEFAULT_PORT = 8765  # engine/oracle/serve.py's


def add_parsers(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve DIO's loot over an OpenAI-compatible HTTP API",
        description="Serves /v1/models and /v1/chat/completions (streaming too) for any loot: "
        "model HERO@step-000200, HERO@latest, HERO@best-bin, HERO@base (or a bare loot name; HERO "
        "alone is the latest). temperature, top_p, max_tokens, seed and stop are honoured; n > 1, "
        "logprobs, tool calls and JSON mode (response_format) are refused with a 400 naming the field. Bound to 127.0.0.1; "
        "every request needs the bearer token written to saves/HERO/serve.token (mode 0600). "
        "Works while DIO trains (loot is read from disk).",
    )
    add_hero_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="bind address; 0.0.0.0 exposes it to the network")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument("--loaded", type=int, default=2, help="loot kept loaded at once (LRU)")
    serve.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    save = save_from(args)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    if args.loaded < 1:
        raise SystemExit("realm: --loaded must be at least 1")
    from tui.web import check_address

    check_address(args.host, args.port)  # out of range or in use: one line, not a traceback
    cmd = [sys.executable, "-m", "engine.oracle.serve", "--save-dir", str(save.root)]
    cmd += ["--host", args.host, "--port", str(args.port), "--loaded", str(args.loaded)]
    sys.stdout.flush()
    # exec, not a child: Ctrl+C and a terminate reach the server itself, none is left behind
    os.execv(sys.executable, cmd)
