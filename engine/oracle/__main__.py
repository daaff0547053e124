"""``python -m engine.oracle --save-dir DIR --loot NAME --turns JSON [...]``: answer
from loot on disk while no engine runs (`realm oracle` uses it). Streams the reply to
stdout as JSON lines: ``{"text": piece}`` as it is generated, then ``{"answer": {loot,
step, weights_hash, text, new_tokens, seconds, first_token_s}}`` per loot, or
``{"error": why}``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from engine.oracle.chat import OracleError, Settings, turns_to_messages
from engine.protocol.savedir import SaveDir


def emit(obj: dict[str, object]) -> None:
    print(json.dumps(obj), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.oracle")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--loot", action="append", required=True, help="repeat for several (a timeline)")
    parser.add_argument("--turns", required=True, help="JSON list: user, assistant, …, user")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.oracle.shelf import ShelfOracle

    try:
        oracle = ShelfOracle(SaveDir(args.save_dir), loaded=1)
        settings = Settings(
            args.temperature,
            args.top_p,
            args.max_new_tokens or oracle.config.oracle.max_new_tokens,
            args.seed,
        )
        messages = turns_to_messages(json.loads(args.turns))
        for name in args.loot:
            answer = oracle.ask(name, messages, settings, lambda t: emit({"text": t}))
            emit({"answer": asdict(answer)})
    except OracleError as exc:
        emit({"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
