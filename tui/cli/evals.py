"""`realm evals add|list|run|compare`: the user's own eval suites.

With the engine running, commands go to it (a run is a task on its board). With it
down, ``python -m engine.evals.commands`` does the same on disk (a run loads the loot
itself). ``--model PATH`` runs a suite on any local Hugging Face model folder, never
kept in the ledger.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.model_folder import model_problem, resolve_model
from engine.protocol.names import printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, engine_side, save_from

RUN_WAIT = 1800.0  # a big suite on a big model

EVALS_HELP = """\
A suite is a JSON-lines file of your questions, one per line:
  {"id": "q1", "question": "…", "expected": "…"}            exact answer (case-insensitive)
  {"id": "q2", "question": "…", "keywords": ["a", "b"]}      share of keywords present (0–1)
  {"id": "q3", "question": "…", "regex": "\\\\b42\\\\b"}         a match anywhere
  {"id": "q4", "question": "…", "number": 3.5, "tolerance": 0.01}
  {"id": "q5", "skill": "bin", "problem": {…}}               a skill problem (or a line of
                                                             `realm skills sample --json`)
  {"id": "q6", "question": "…", "choices": ["…", "…"], "answer": 1}   multiple choice (MMLU,
                                                             ARC's answerKey): scored by letter
"messages" may replace "question"; "category" and "difficulty" give a breakdown.
A row with no scorer refuses the file, naming its line. Suites run on every automatic
loot (their score is a Vault metric: `realm vault best --metric SUITE`), with `e` in the
game, or here."""


def add_parsers(sub: Any) -> None:
    evals = sub.add_parser(
        "evals",
        help="your own eval suites: add, list, run on loot or a model folder, compare",
        description=EVALS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evals.set_defaults(run=cmd_evals)
    ops = evals.add_subparsers(dest="evals_command", metavar="ACTION")
    add = ops.add_parser(
        "add",
        help="check a suite file and copy it into the hero's suites/",
        description="A suite is JSON lines (or one JSON array) of questions, each with one way to "
        'score it: {"question": "Capital of France?", "expected": "Paris"}; also "keywords", '
        '"regex", "number" (+ "tolerance"), or a skill problem. "prompt" and "answer" are read as '
        '"question" and "expected", as are the prompt/answer pairs quests read (Alpaca, input/output, '
        "prompt/completion, …) and their chat rows (the last answer expected); multiple choice (MMLU's choices + answer index, ARC's answerKey) "
        "is asked with lettered choices and scored by the letter. A row that cannot be scored "
        "refuses the file, naming its line.",
    )
    add_hero_args(add)
    add.add_argument("file", type=Path, help="the suite file; its name (without .jsonl) names the suite")
    listing = ops.add_parser("list", help="every suite with its latest scores")
    add_hero_args(listing)
    listing.add_argument("--json", action="store_true")
    run = ops.add_parser("run", help="run a suite on loot (default: the live weights, or the newest loot)")
    add_hero_args(run)
    run.add_argument("suite")
    run.add_argument("--loot", action="append", help="a loot (repeat for several)")
    run.add_argument(
        "--model", help="instead: a local Hugging Face model folder (or a Hub id in the local cache)"
    )
    run.add_argument(
        "--json", action="store_true", help="the whole result: per question, category, difficulty"
    )
    compare = ops.add_parser(
        "compare", help="two stored runs: per question, and whether the difference is real"
    )
    add_hero_args(compare)
    compare.add_argument("suite")
    compare.add_argument("a", help="a run's target: a loot name, live@STEP")
    compare.add_argument("b")
    compare.add_argument("--json", action="store_true")

    spar = sub.add_parser(
        "spar",
        help="DIO answers fresh problems; its mistakes become a high-priority quest",
        description="DIO (the live weights; the engine must be running) answers fresh problems of "
        "each skill (or --skill) at its current level. Each wrong answer becomes three rows: the "
        "wrong answer judged incorrect, the correct solution, and a fresh problem judged correct. "
        "They are queued as a high-priority quest; after it has trained, the same problems are "
        "asked again and the board says 'fixed k of n'.",
    )
    add_hero_args(spar)
    spar.add_argument("--skill", help="one skill id (default: every skill DIO trains)")
    spar.add_argument(
        "--problems", type=int, default=0, help="problems per skill (default: the hero's setting, 32)"
    )
    spar.set_defaults(run=cmd_spar)


def commands(args: argparse.Namespace) -> list[p.SuiteCommand]:
    match args.evals_command:
        case "add":
            return [p.AddSuite(str(args.file.expanduser().absolute()))]
        case "list":
            return [p.ListSuites()]
        case "run":
            return [p.RunSuite(args.suite, loot) for loot in (args.loot or [None])]
        case "compare":
            return [p.CompareSuite(args.suite, args.a, args.b)]
    raise SystemExit("realm: usage: realm evals add|list|run|compare (see realm evals --help)")


Reply = tuple[bool, str, Any]


def online(save: SaveDir, command: p.SuiteCommand) -> Reply:
    with EngineClient.connect_waiting(save) as client:
        client.hello(client="realm evals", watcher=False)
        reply = client.request(command, (p.SuiteReply, p.CommandRejected), RUN_WAIT)
        client.close(goodbye=True)
    if isinstance(reply, p.CommandRejected):
        return False, reply.reason, None
    return reply.ok, reply.message, json.loads(reply.data) if reply.data else None


def offline(save: SaveDir, command: p.SuiteCommand, model: str | None) -> Reply | None:
    args = ["--save-dir", str(save.root), "--command", json.dumps(p.command_to_dict(command))]
    if model:
        problem = model_problem(model)
        if problem is not None:
            return False, f"--model {model}: {problem}", None
        args += ["--model", str(resolve_model(model))]
    answer = engine_side("engine.evals.commands", args, "suite")
    return None if answer is None else (answer["ok"], answer["message"], answer["data"])


def show(args: argparse.Namespace, message: str, data: Any) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data))
        return
    if args.evals_command == "list":
        for suite in data or []:
            scores = ", ".join(f"{t} {s:.0%}" for t, s in list(suite["scores"].items())[-4:]) or "not run yet"
            print(
                printable(
                    f"{suite['suite']:<24} {suite['questions']:>5} questions  {suite.get('problem') or scores}"
                )
            )
        if not data:
            print("No suites yet: `realm evals add FILE` (see realm evals --help for the format).")
        return
    print(printable(message))
    if args.evals_command == "compare" and data:
        print(f"  {data['a']}: {data['mean_a']:.0%}   {data['b']}: {data['mean_b']:.0%}")
        for label in ("fixed", "broken", "both_right", "both_wrong"):
            ids = data[label]
            print(
                printable(
                    f"  {label.replace('_', ' ')} ({len(ids)}): {', '.join(ids[:12])}{' …' if len(ids) > 12 else ''}"
                )
            )
    elif args.evals_command == "run" and data:
        for name in ("by_category", "by_difficulty"):
            if data[name]:
                print(
                    "  "
                    + name.replace("_", " ")
                    + ": "
                    + ", ".join(f"{k} {v:.0%}" for k, v in data[name].items())
                )


def cmd_evals(args: argparse.Namespace) -> int:
    if args.evals_command is None:
        raise SystemExit("realm: usage: realm evals add|list|run|compare (see realm evals --help)")
    save = save_from(args)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    model = getattr(args, "model", None)
    code = 0
    for command in commands(args):
        try:
            # --model runs in its own process even beside an engine: the engine trains one model
            result = (
                None if save.engine_pid() is not None and model is None else offline(save, command, model)
            )
            if result is None:
                result = online(save, command)
        except (OSError, TimeoutError, EngineGone) as exc:
            print(f"could not reach the engine: {exc}", file=sys.stderr)
            return 1
        ok, message, data = result
        if not ok:
            print(printable(message), file=sys.stderr)
            code = 1
            continue
        show(args, message, data)
    return code


def cmd_spar(args: argparse.Namespace) -> int:
    save = save_from(args)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    if save.engine_pid() is None:
        print(
            "sparring uses DIO's live weights: start the engine with `realm play` or `realm train`",
            file=sys.stderr,
        )
        return 1
    command = p.Spar(args.skill, args.problems)
    problem = p.command_problem(command)
    if problem is not None:
        raise SystemExit(f"realm: {problem}")
    code = 0
    try:
        with EngineClient.connect_waiting(save) as client:
            snapshot = client.hello(client="realm spar", watcher=False)
            rounds = 1 if args.skill else max(1, len(snapshot.skills))
            client.send(command)
            for _ in range(rounds):
                reply = client.wait_for((p.QuestReply, p.CommandRejected), RUN_WAIT)
                ok = isinstance(reply, p.QuestReply) and reply.ok
                text = reply.message if isinstance(reply, p.QuestReply) else reply.reason
                print(printable(text), file=sys.stdout if ok else sys.stderr)
                code = code or (0 if ok else 1)
                if isinstance(reply, p.QuestReply) and not reply.ok and "does not train" in text:
                    break
            client.close(goodbye=True)
    except (OSError, TimeoutError, EngineGone) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1
    return code
