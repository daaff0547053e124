"""`realm`: the command line. Play, train headless, check status, stop.

This module must not import torch: `realm play` draws its first frame while the
engine process is still loading it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tui import cli_quest, cli_skills
from tui.launcher import (
    DEFAULT_HERO,
    SAVES_ENV,
    Hero,
    default_saves_root,
    engine_command,
    spawn_engine,
    stop_engine,
)

EPILOG = f"""
Save slots live in SAVES/HERO (default {default_saves_root()}/{DEFAULT_HERO}).
Set {SAVES_ENV} to move the save root. Docs: README.md.
"""


def add_hero_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hero", default=DEFAULT_HERO, help=f"save slot name (default: {DEFAULT_HERO})")
    parser.add_argument(
        "--saves",
        type=Path,
        default=None,
        help=f"save root folder (default: ${SAVES_ENV}, else {default_saves_root()})",
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="a local Hugging Face causal-LM folder to train (e.g. a copy of Qwen3-0.6B); "
        "default: the hatchling, a tiny model created on first run. Fixed per hero.",
    )
    parser.add_argument(
        "--mode",
        choices=("full", "lora", "qlora"),
        help="full: train every weight (default); lora: LoRA adapters on a frozen base; "
        "qlora: LoRA on a 4-bit NF4 base (CUDA GPU only). Fixed per hero.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realm",
        description="Realm of Training: an idle RPG whose hero, DIO, is a language model "
        "that really trains. Losses are battles, checkpoints are loot.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    play = sub.add_parser(
        "play",
        help="open the game (starts DIO training, or reattaches to a running DIO)",
        description="Open the game in this terminal. If DIO's engine is not running it is "
        "started in the background (it survives the terminal closing); if it is, the game "
        "reattaches and shows what happened while you were away. Keys: space pause/resume, "
        "s save loot, ? all keys, q quit.",
    )
    add_hero_args(play)
    add_model_args(play)

    train = sub.add_parser(
        "train",
        help="train headless in the foreground, printing progress (Ctrl+C saves and stops)",
        description="Run the engine in this terminal with no game screen: for nohup, "
        "systemd or a CI box. Prints a progress line every few seconds. Ctrl+C (or SIGTERM) "
        "saves loot and stops; a second Ctrl+C stops at once without saving. "
        "`realm play` can attach to it from another terminal.",
    )
    add_hero_args(train)
    add_model_args(train)
    train.add_argument("--max-steps", type=int, help="save and stop once DIO reaches this step")
    train.add_argument("--checkpoint-every", type=int, help="steps between automatic loot")
    train.add_argument("--eval-every", type=int, help="steps between evals")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")

    status = sub.add_parser(
        "status",
        help="is DIO training? step, loss, level, last loot",
        description="Report the hero's state without opening the game.",
    )
    add_hero_args(status)
    status.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (state, step, loss, level, last_loot_step, pid, …)",
    )

    stop = sub.add_parser(
        "stop",
        help="save loot and stop DIO's engine",
        description="Ask the running engine to save a checkpoint and stop, and wait for it.",
    )
    add_hero_args(stop)
    stop.add_argument("--timeout", type=float, default=300, help="seconds to wait (default 300)")
    cli_skills.add_parsers(sub, add_hero_args)
    cli_quest.add_parsers(sub, add_hero_args)

    export = sub.add_parser(
        "export",
        help="write a loot as a plain Hugging Face model folder (LoRA adapters merged)",
        description="Copy a loot (default: the newest) into a new folder that loads with "
        "AutoModelForCausalLM.from_pretrained. For lora/qlora heroes the adapters are merged "
        "into the base weights. Works while DIO trains.",
    )
    add_hero_args(export)
    export.add_argument("dest", type=Path, help="a new folder")
    export.add_argument("--loot", help="loot name, e.g. step-000250 (default: the newest)")

    bench = sub.add_parser(
        "bench",
        help="measure: training speed vs a plain HF loop (+MFU), the game's cost, evals, quests, memory",
        description="Default: our training step vs a straightforward padded Hugging Face loop on "
        "the same model, data, batch and length, in one engine process: tokens/s of each, the "
        "ratio, peak memory and MFU against a matmul peak measured at start (a hatchling on a "
        "CPU; Qwen3-0.6B on a GPU). --game: what the game costs training (tokens/s headless vs "
        "watched, pause latency, first frame, memory); a few minutes on a 2-core CPU.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--steps", type=int, help="timed steps (default 20; --game: 150 per run)")
    bench.add_argument("--rows", type=int, help="rows per step (default 8)")
    bench.add_argument("--seq-len", type=int, help="tokens per row (default 256)")
    bench.add_argument("--model", help="a local HF model folder to benchmark")
    bench.add_argument("--mode", choices=("full", "lora"), help="what trains (default full)")
    kind = bench.add_mutually_exclusive_group()
    kind.add_argument("--game", action="store_true", help="instead: the game's cost to training")
    kind.add_argument(
        "--evals", action="store_true", help="instead: eval problems/s, batched generation vs one at a time"
    )
    kind.add_argument(
        "--quests",
        action="store_true",
        help="instead: quest validation rows/s (100k rows), inbox-to-board latency",
    )
    kind.add_argument(
        "--estimate",
        action="store_true",
        help="instead: the memory estimate for full, lora and qlora (no training)",
    )
    bench.add_argument("--repeats", type=int, default=2, help="--game: runs of each kind (default 2)")
    return parser


def hero_from(args: argparse.Namespace) -> Hero:
    if "/" in args.hero or args.hero.startswith(".") or not args.hero:
        raise SystemExit(f"realm: --hero {args.hero!r} must be a plain name like 'dio'")
    root = (args.saves.expanduser() if args.saves else default_saves_root()).absolute()
    return Hero(root / args.hero)


def check_model(hero: Hero, model: str | None) -> str | None:
    """Fail early, before any screen, on a --model that cannot work."""
    if not model:
        return None
    folder = Path(model).expanduser().resolve()
    if not folder.is_dir():
        raise SystemExit(f"realm: --model {model}: no such folder (a local Hugging Face model folder)")
    if not (folder / "config.json").exists():
        raise SystemExit(f"realm: --model {model}: no config.json in it; is it a save_pretrained folder?")
    existing = hero.read_config().get("model")
    if existing is not None and existing != str(folder):
        raise SystemExit(
            f"realm: hero {hero.name!r} already trains {existing or 'the hatchling'}; "
            f"choose another slot with --hero NAME to train {model}"
        )
    return str(folder)


def check_mode(hero: Hero, mode: str | None) -> list[str]:
    """Engine flags for --mode, refused early when it cannot work here."""
    if not mode:
        return []
    existing = hero.read_config().get("mode")
    if hero.read_config() and (existing or "full") != mode:
        raise SystemExit(
            f"realm: hero {hero.name!r} trains in mode {existing or 'full'}; "
            f"choose another slot with --hero NAME for {mode}"
        )
    if mode == "qlora" and not any(Path("/dev").glob("nvidia[0-9]*")):
        raise SystemExit(
            "realm: --mode qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this machine "
            "has none. Use --mode lora (the same adapters, full-precision base) or --mode full."
        )
    return ["--mode", mode]


# ---------------------------------------------------------------------- commands


def cmd_play(args: argparse.Namespace) -> int:
    from tui.app import RealmApp

    hero = hero_from(args)
    model = check_model(hero, args.model)
    mode = check_mode(hero, args.mode)
    spawned: list[Any] = []  # the engine we started, if any: alive while it loads
    if hero.engine_pid() is None:
        spawned.append(spawn_engine(hero, model, mode))

    def restart() -> None:
        if hero.engine_pid() is None:
            spawned.append(spawn_engine(hero, model, mode))

    def engine_alive() -> bool:
        # Before its pid file exists a fresh engine is still importing torch.
        return hero.engine_pid() is not None or bool(spawned and spawned[-1].poll() is None)

    restart.log_tail = hero.log_tail  # type: ignore[attr-defined]
    app = RealmApp(connector=hero.connect, engine_alive=engine_alive, restart_engine=restart)
    result = app.run()
    pid = hero.engine_pid()
    if result in ("background", "down") and pid:  # "down" too: left while it was waking up
        print(f"DIO keeps training in the background (pid {pid}).")
        print(
            "  realm play    to watch again\n  realm status  for a one-line report\n  realm stop    to save and stop"
        )
    elif result == "stopped":
        status = hero.read_status()
        print(
            f"DIO rests at step {status.get('step', 0):,}; last loot at step {status.get('last_loot_step')}."
        )
    elif result == "down":
        print(f"The engine is not running. Its log: {hero.file('engine.log')}")
        tail = hero.log_tail(5)
        if tail:
            print(tail)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    hero = hero_from(args)
    model = check_model(hero, args.model)
    mode = check_mode(hero, args.mode)
    pid = hero.engine_pid()
    if pid is not None:
        print(
            f"realm: DIO is already training in the background (pid {pid}). "
            "Use `realm play` to watch or `realm stop` to stop it.",
            file=sys.stderr,
        )
        return 3
    hero.root.mkdir(parents=True, exist_ok=True)
    hero.clean_stale()
    extra = ["--foreground", *mode]
    for flag in ("max_steps", "checkpoint_every", "eval_every", "threads"):
        value = getattr(args, flag)
        if value is not None:
            extra += [f"--{flag.replace('_', '-')}", str(value)]
    cmd = engine_command(hero, model, extra)
    print(f"Training {hero.name} in the foreground; Ctrl+C saves and stops.", flush=True)
    os.execv(cmd[0], cmd)  # become the engine: signals reach it directly
    return 0  # not reached


def status_record(hero: Hero) -> dict[str, Any]:
    status = hero.read_status()
    pid = hero.engine_pid()
    state = status.get("state", "stopped") if pid else "stopped"
    if pid and state in ("starting", "stopped", "crashed"):
        state = "training"  # alive but has not written its first status yet
    record = {
        "hero": hero.name,
        "state": state,
        "step": status.get("step", 0),
        "loss": status.get("loss"),
        "val_loss": status.get("val_loss"),
        "acc": status.get("acc"),
        "level": status.get("level", 0),
        "gold": status.get("gold", 0),
        "last_loot_step": status.get("last_loot_step"),
        "loot": status.get("loot", 0),
        "pid": pid,
        "model": status.get("model") or hero.read_config().get("model") or "hatchling",
        "device": status.get("device"),
        "tokens_per_s": status.get("tokens_per_s") if pid else 0.0,
        "updated_at": status.get("updated_at"),
        "skills": status.get("skills", {}),
        "quest": status.get("quest") if pid else None,  # the active quest's progress
        "memory_plan": status.get("memory_plan", ""),
        "gpu": status.get("gpu") if pid else None,
        "save_dir": str(hero.root),
    }
    if not pid and status.get("state") == "crashed":
        record["error"] = status.get("error")
    return record


def cmd_status(args: argparse.Namespace) -> int:
    hero = hero_from(args)
    if not hero.root.exists():
        if args.json:
            print(
                json.dumps(
                    {
                        "hero": hero.name,
                        "state": "stopped",
                        "step": 0,
                        "loss": None,
                        "level": 0,
                        "last_loot_step": None,
                        "pid": None,
                        "exists": False,
                    }
                )
            )
            return 0
        print(f"No hero {hero.name!r} in {hero.root.parent} yet. `realm play` hatches one.")
        return 0
    rec = status_record(hero)
    if args.json:
        print(json.dumps(rec))
        return 0
    loss = f"{rec['loss']:.4f}" if rec["loss"] is not None else "--"
    who = f"{hero.name.upper()} ({rec['model']})"
    running = f", pid {rec['pid']}" if rec["pid"] else ""
    print(f"{who}: {rec['state']}{running}")
    print(f"  step {rec['step']:,} · level {rec['level']} · loss {loss} · gold {rec['gold']}")
    for skill_id, track in (rec.get("skills") or {}).items():
        print(f"  {skill_id.upper()} level {track['level']} (evals at this level: {len(track['evals'])})")
    quest = rec.get("quest")
    if quest:
        total = quest["rows"] * quest["epochs"]
        print(f"  quest {quest['name']}: {quest['seen']:,}/{total:,} rows ({quest['epochs']} epoch(s))")
    if rec["pid"]:
        print(f"  {rec['tokens_per_s'] or 0:,.0f} tok/s on {rec['device']}")
        if rec["memory_plan"]:
            print(f"  memory: {rec['memory_plan']}")
    if rec["last_loot_step"] is not None:
        age = ""
        if rec["updated_at"]:
            age = f" (status {time.time() - rec['updated_at']:.0f}s old)"
        print(f"  last loot at step {rec['last_loot_step']:,}; {rec['loot']} in the vault{age}")
    else:
        print("  no loot yet")
    if rec.get("error"):
        print(f"  the engine crashed: {rec['error']} (see {hero.file('engine.log')})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    hero = hero_from(args)
    pid = hero.engine_pid()
    if pid is None:
        print(f"{hero.name.upper()} is not training; nothing to stop.")
        return 0
    print(f"Saving loot and stopping {hero.name.upper()} (pid {pid})…", end="", flush=True)
    try:
        stop_engine(hero, timeout=args.timeout, on_wait=lambda: print(".", end="", flush=True))
    except TimeoutError as exc:
        print(f"\nrealm: {exc}", file=sys.stderr)
        return 1
    status = hero.read_status()
    print(
        f" done. Rests at step {status.get('step', 0):,}, last loot at step {status.get('last_loot_step')}."
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess  # every measurement but --game runs in an engine process: not this one

    if args.game:
        from tui.bench import run

        echo = (lambda _line: None) if args.json else (lambda line: print(line, flush=True))
        result = run(args.steps or 150, args.repeats, echo)
        if args.json:
            print(json.dumps(result))
        else:
            for key, value in result.items():
                print(f"  {key:28} {value}")
        return 0
    if args.evals or args.quests:
        module = "engine.bench_eval" if args.evals else "engine.bench_quests"
        return subprocess.call([sys.executable, "-m", module])
    cmd = [sys.executable, "-m", "engine.bench_speed"]
    for flag in ("steps", "rows", "seq_len", "model", "mode"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    cmd += ["--json"] if args.json else []
    cmd += ["--estimate"] if args.estimate else []
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "play": cmd_play,
        "train": cmd_train,
        "status": cmd_status,
        "stop": cmd_stop,
        "bench": cmd_bench,
        "skills": cmd_skills,
        "eval": cmd_eval,
        "quest": lambda a: cli_quest.cmd_quest(a, hero_from(a).root),
        "export": cmd_export,
    }
    if args.command is None:
        parser.print_help()
        return 0
    return commands[args.command](args)


def cmd_export(args: argparse.Namespace) -> int:
    import subprocess  # the engine side loads torch; this process must not

    cmd = [sys.executable, "-m", "engine.export", "--save-dir", str(hero_from(args).root)]
    if args.loot:
        cmd += ["--loot", args.loot]
    return subprocess.call([*cmd, str(args.dest.expanduser().absolute())])


def cmd_skills(args: argparse.Namespace) -> int:
    if args.skills_command == "sample":
        return cli_skills.cmd_sample(args)
    if args.skills_command == "score":
        return cli_skills.cmd_score(args)
    return cli_skills.print_skill_list(hero_from(args).read_status())


def cmd_eval(args: argparse.Namespace) -> int:
    if args.eval_command != "import":
        raise SystemExit("realm: usage: realm eval import PATH (see realm eval import --help)")
    return cli_skills.cmd_eval_import(args, hero_from(args).root)


if __name__ == "__main__":
    raise SystemExit(main())
