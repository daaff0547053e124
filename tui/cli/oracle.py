"""`realm oracle ask|timeline`: talk to DIO, strictly.

With the engine running, the engine answers between two training steps (the live
weights by default, or any loot). With it down, ``python -m engine.oracle`` answers from
the loot folders on disk (the newest by default). Either way the reply names the loot,
its step and a hash of the weights that produced it; an unknown loot is an error that
lists the loot there are.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.names import printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, save_from
from tui.cli.vault import offline as vault_offline

ANSWER_WAIT = 600.0
TIMELINE_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def add_parsers(sub: Any) -> None:
    oracle = sub.add_parser(
        "oracle",
        help="ask DIO (any loot, or the live weights) a question",
        description="Chat with DIO through its chat template, greedy by default. While the engine "
        "runs it answers between training steps, paused or not; otherwise loot is loaded from disk.",
    )
    oracle.set_defaults(run=cmd_oracle)
    ops = oracle.add_subparsers(dest="oracle_command", metavar="ACTION")
    ask = ops.add_parser("ask", help="one question; the reply streams as it is written")
    timeline = ops.add_parser(
        "timeline", help="one question, answered by the base model and a spread of loot"
    )
    for op in (ask, timeline):
        add_hero_args(op)
        op.add_argument("prompt", help="the question")
        op.add_argument("--json", action="store_true", help="one JSON object per answer")
        op.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
        op.add_argument("--top-p", type=float, default=1.0)
        op.add_argument("--max-new-tokens", type=int, default=0, help="default: the hero's oracle setting")
        op.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same reply)")
    ask.add_argument(
        "--loot", help="a loot (step-000200, 200, latest, best-bin, base); default: the live weights"
    )


def cmd_oracle(args: argparse.Namespace) -> int:
    if args.oracle_command is None:
        raise SystemExit("realm: usage: realm oracle ask|timeline PROMPT (see realm oracle --help)")
    if not args.prompt.strip():
        print('realm: the prompt is empty: ask DIO something, e.g. realm oracle ask "1+1="', file=sys.stderr)
        return 2
    save = save_from(args)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    probe = p.Ask("check", (args.prompt,), None, args.temperature, args.top_p, args.max_new_tokens, args.seed)
    problem = p.command_problem(probe)
    if problem is not None:
        print(f"realm: {problem.replace('Ask.', '--').replace('_', '-')}", file=sys.stderr)
        return 2
    running = save.engine_pid() is not None
    try:
        names = [args.loot] if args.oracle_command == "ask" else timeline_names(save, running)
        if running:
            return ask_engine(save, args, names)
        return ask_offline(save, args, [n or "latest" for n in names])
    except (OSError, TimeoutError, EngineGone) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1


def timeline_names(save: SaveDir, running: bool) -> list[str | None]:
    if running:
        from tui.cli.vault import online

        listing = online(save, p.ListLoot())[2]
    else:
        answer = vault_offline(save, p.ListLoot())
        listing = answer[2] if answer else None
    names = [loot.name for loot in (listing.loot if listing else ()) if not loot.set_aside]
    return ["base", *spread(names)]


def spread(names: list[str]) -> list[str]:
    """The timeline's loot: the first, 25/50/75% and the latest (oldest first), each once."""
    picked: list[str] = []
    for point in TIMELINE_POINTS:
        if names and (name := names[round(point * (len(names) - 1))]) not in picked:
            picked.append(name)
    return picked


def show(answer: dict[str, Any], args: argparse.Namespace, streamed: bool) -> None:
    if args.json:
        print(json.dumps(answer))
        return
    if not streamed:
        print(printable(answer["text"]))
    ttft = f", first token {answer['first_token_s']:.2f}s" if answer.get("first_token_s") is not None else ""
    print(
        f"\n— {answer['loot']} (step {answer['step']:,}, weights {answer['weights_hash'][:12]}), "
        f"{answer['new_tokens']} tokens in {answer['seconds']:.2f}s{ttft}"
    )


def ask_engine(save: SaveDir, args: argparse.Namespace, names: list[str | None]) -> int:
    with EngineClient.connect_waiting(save) as client:
        client.hello(client="realm oracle", watcher=False)
        for name in names:
            if not args.json and len(names) > 1:
                print(f"\n=== {name or 'live'} ===")
            request = uuid.uuid4().hex[:8]
            client.send(
                p.Ask(
                    request,
                    (args.prompt,),
                    name,
                    args.temperature,
                    args.top_p,
                    args.max_new_tokens,
                    args.seed,
                )
            )
            while True:
                event = client.wait_for((p.OracleToken, p.OracleAnswered, p.CommandRejected), ANSWER_WAIT)
                if isinstance(event, p.CommandRejected):
                    print(f"realm: {event.reason}", file=sys.stderr)
                    return 1
                if isinstance(event, p.OracleToken):
                    if not args.json:
                        print(printable(event.text), end="", flush=True)
                    continue
                answer = {
                    k: getattr(event, k)
                    for k in (
                        "loot",
                        "step",
                        "weights_hash",
                        "text",
                        "new_tokens",
                        "seconds",
                        "first_token_s",
                    )
                }
                show(answer, args, streamed=True)
                break
        client.close(goodbye=True)
    return 0


def ask_offline(save: SaveDir, args: argparse.Namespace, names: list[str]) -> int:
    cmd = [
        sys.executable,
        "-m",
        "engine.oracle",
        "--save-dir",
        str(save.root),
        "--turns",
        json.dumps([args.prompt]),
    ]
    for name in names:
        cmd += ["--loot", name]
    cmd += ["--temperature", str(args.temperature), "--top-p", str(args.top_p)]
    cmd += ["--max-new-tokens", str(args.max_new_tokens), "--seed", str(args.seed)]
    if not args.json and len(names) > 1:
        print(f"=== {names[0]} ===")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    answered = 0
    for line in proc.stdout:
        event = json.loads(line)
        if "error" in event:
            print(f"realm: {event['error']}", file=sys.stderr)
            proc.wait()
            return 1
        if "text" in event:
            if not args.json:
                print(printable(event["text"]), end="", flush=True)
            continue
        show(event["answer"], args, streamed=True)
        answered += 1
        if not args.json and answered < len(names):
            print(f"\n=== {names[answered]} ===")
    if proc.wait() != 0 or answered < len(names):
        err = (proc.stderr.read() if proc.stderr else "").strip()
        print(
            f"realm: the oracle failed: {err.splitlines()[-1] if err else proc.returncode}", file=sys.stderr
        )
        return 1
    return 0
