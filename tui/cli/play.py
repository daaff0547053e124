"""`realm play` (the game, starting or reattaching to the engine) and `realm train`
(the same engine in the foreground, no screen)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from engine.protocol.config import MODES, HeroConfig, add_override_flags, apply_overrides, override_args
from engine.protocol.model_folder import model_problem, resolve_model
from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir
from tui.cli.common import DEFAULT_HERO, add_hero_args, hero_folders, save_from
from tui.cli.heroes import hero_row, root_of
from tui.link import EngineControl, engine_command


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        help="a local Hugging Face causal-LM folder to train, or a Hub id already in the "
        "Hugging Face cache (e.g. Qwen/Qwen3-0.6B after `hf download`; nothing is downloaded); "
        "default: the hatchling, a tiny model created on first run. Fixed per hero.",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="full: train every weight (default); lora: LoRA adapters on a frozen base; "
        "qlora: LoRA on a 4-bit NF4 base (CUDA GPU only). Fixed per hero.",
    )


def add_gpus_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        metavar="N",
        help="train on N GPUs of this machine (torchrun, DDP: rank 0 is the engine the game talks to, "
        "the others only train; the same global batch and losses as one GPU). On a machine "
        "without a GPU, N processes on the CPU (gloo): for trying it out. Default 1.",
    )
    parser.add_argument(
        "--fsdp",
        action="store_true",
        help="with --gpus N (mode full): shard the weights, gradients and optimizer state over the "
        "ranks (PyTorch FSDP2), for a full fine-tune whose training state does not fit one GPU; "
        "the weights themselves must still fit one (rank 0 keeps a whole copy for evals, the "
        "Oracle and loot). Loot is the same as without it.",
    )


def check_gpus(gpus: int) -> int:
    """Refuse a rank count this machine cannot run, before anything starts."""
    if gpus < 1:
        raise SystemExit(f"realm: --gpus {gpus}: at least 1")
    have = len(list(Path("/dev").glob("nvidia[0-9]*")))
    if have and gpus > have:
        raise SystemExit(f"realm: --gpus {gpus}: this machine has {counted(have, 'GPU')}")
    return gpus


def check_fsdp(save: SaveDir, args: argparse.Namespace) -> list[str]:
    """Engine flags for --fsdp, refused early where it cannot work."""
    if not args.fsdp:
        return []
    if args.gpus < 2:
        raise SystemExit("realm: --fsdp shards the training over several ranks: add --gpus 2 or more")
    mode = args.mode or save.read_config().get("mode") or "full"
    if mode != "full":
        raise SystemExit(
            f"realm: --fsdp shards a full fine-tune; hero {save.name!r} trains in mode {mode}, whose "
            "frozen base and small adapters fit one GPU: use --gpus N without --fsdp"
        )
    if save.read_config().get("train", {}).get("precision") == "fp16":
        raise SystemExit(
            f"realm: --fsdp does not scale fp16 losses across shards; hero {save.name!r} trains in fp16: "
            "`realm config set train.precision bf16` (or fp32) first, or use --gpus N without --fsdp"
        )
    return ["--fsdp"]


def add_parsers(sub: Any) -> None:
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
    add_gpus_arg(play)
    web = play.add_argument_group("in a browser")
    web.add_argument(
        "--web",
        action="store_true",
        help="serve the game as a web page (textual-serve) instead of drawing it here: open the "
        "address it prints; every tab is a view of the same DIO, and Ctrl+C stops serving, "
        "not training",
    )
    web.add_argument("--port", type=int, default=8000, help="--web: the port to serve on (default 8000)")
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="--web: the address to listen on (default 127.0.0.1, this machine only: the page "
        "has no login; over SSH use `ssh -L 8000:localhost:8000 HOST`)",
    )
    # No --hero: the only hero, or a start screen to pick one when there are several.
    play.set_defaults(run=cmd_play, hero=None)

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
    add_gpus_arg(train)
    add_override_flags(train)
    train.set_defaults(run=cmd_train)


def check_model(save: SaveDir, model: str | None) -> str | None:
    """Fail early, before any screen, on a --model that cannot work."""
    if not model:
        return None
    folder = resolve_model(model)  # a folder, or a Hub id already in the local cache
    existing = save.read_config().get("model")
    if existing is not None and existing != str(folder):
        raise SystemExit(
            f"realm: hero {save.name!r} already trains {existing or 'the hatchling'}; "
            f"choose another slot with --hero NAME to train {model}"
        )
    if existing is None:  # a new hero: the folder must be a model before a slot is made
        problem = model_problem(model)
        if problem is not None:
            raise SystemExit(f"realm: --model {model}: {problem}")
    return str(folder)


def check_config(save: SaveDir) -> HeroConfig:
    """The hero's settings (a new hero: the defaults); a config.json that is not one —
    edited by hand, say — is one line naming the file and the field, before any screen."""
    if not save.config.is_file():
        return HeroConfig(name=save.name)
    try:
        return HeroConfig.load(save.config)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"realm: {exc}") from None


def check_overrides(config: HeroConfig, args: argparse.Namespace) -> None:
    """Refuse a --seq-len, --threads… the engine would refuse, before a slot is made."""
    flags = " ".join(override_args(args))
    if not flags:
        return
    try:
        apply_overrides(config, args)
    except ValueError as exc:
        raise SystemExit(f"realm: {flags}: {exc}") from None


def check_mode(save: SaveDir, mode: str | None) -> list[str]:
    """Engine flags for --mode, refused early when it cannot work here."""
    if not mode:
        return []
    config = save.read_config()
    existing = config.get("mode")
    if config and (existing or "full") != mode:
        raise SystemExit(
            f"realm: hero {save.name!r} trains in mode {existing or 'full'}; "
            f"choose another slot with --hero NAME for {mode}"
        )
    if mode == "qlora" and not any(Path("/dev").glob("nvidia[0-9]*")):
        raise SystemExit(
            "realm: --mode qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this machine "
            "has none. Use --mode lora (the same adapters, full-precision base) or --mode full."
        )
    return ["--mode", mode]


def pick_hero(args: argparse.Namespace) -> bool:
    """Fill in args.hero (and --model/--mode for a new hero) when --hero was not given:
    the only hero there is, else the start screen's choice. False: the player quit."""
    if args.hero is not None:
        return True
    root = root_of(args)
    folders = hero_folders(root)
    chooser = sys.stdin.isatty() and not args.web  # the browser page has no start screen
    if len(folders) < 2 or args.model or args.mode or not chooser:
        args.hero = folders[0].name if len(folders) == 1 and not args.model else DEFAULT_HERO
        return True
    from tui.start import StartApp

    heroes = [hero_row(SaveDir(folder)) for folder in folders]
    choice = StartApp(heroes, any(Path("/dev").glob("nvidia[0-9]*"))).run()
    if choice is None:
        return False
    args.hero, args.model, args.mode = choice.hero, choice.model, choice.mode
    return True


def ignored_launch_flags(save: SaveDir, args: argparse.Namespace) -> str:
    """What to tell a player whose --gpus / --fsdp a running engine cannot take: `realm
    play` attaches to it as it is. Empty when nothing was asked or it already runs so."""
    if save.engine_pid() is None or (args.gpus == 1 and not args.fsdp):
        return ""
    status = save.read_status()
    ranks, sharded = int(status.get("ranks") or 1), bool(status.get("sharded"))
    if (ranks, sharded) == (args.gpus, args.fsdp):
        return ""
    now = counted(ranks, "rank") + (", sharded" if sharded else "")
    asked = f"--gpus {args.gpus}" + (" --fsdp" if args.fsdp else "")
    return (
        f"{save.name.upper()} was already training on {now}; {asked} takes effect at its next start "
        "(press q, then s to save and stop, and run realm play again with it)"
    )


def cmd_play(args: argparse.Namespace) -> int:
    from tui.app import RealmApp
    from tui.saved import saved_state

    if args.web:
        from tui.web import check_address

        check_address(args.host, args.port)
    elif not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdout.isatty() and sys.stdin.isatty()):
        # Redirected to a file or under nohup the game would draw escape codes into it, forever;
        # with its input piped, no key would reach it. (A browser tab has textual-serve's driver.)
        raise SystemExit(
            "realm: realm play draws the game in a terminal and reads its keys there; this is not one. "
            "To train without it: realm train (in the foreground), or realm play --web (a browser)."
        )
    if not pick_hero(args):
        return 0
    save = save_from(args)
    if save.engine_pid() is None:  # a running engine read its config when it started
        check_config(save)
    gpus = check_gpus(args.gpus)
    flags = check_mode(save, args.mode) + check_fsdp(save, args)
    control = EngineControl(save, check_model(save, args.model), flags, gpus)
    notice = ignored_launch_flags(save, args)
    control.start()
    if args.web:
        return serve_web(save, args.host, args.port)
    app = RealmApp(
        connector=control.connect,
        engine_alive=control.alive,
        restart_engine=control.restart,
        down_report=control.down_report,
        export_loot=control.export_loot,
        saved=saved_state(save),
        notice=notice,
    )
    result = app.run()
    pid = save.engine_pid()
    hero = save.name.upper()
    if result in ("background", "down", None) and pid:  # "down": left while it was waking up
        print(f"{hero} keeps training in the background (pid {pid}).")
        print(
            "  realm play    to watch again\n  realm status  for a one-line report\n  realm stop    to save and stop"
        )
    elif result == "stopped":
        status = save.read_status()
        print(
            f"{hero} rests at step {status.get('step', 0):,}; last loot at step {status.get('last_loot_step')}."
        )
    elif result == "down":  # left with the engine down: the run did not go on
        status = save.read_status()
        if status.get("refused"):
            print(f"The engine would not start: {status.get('error')}", file=sys.stderr)
            return 1
        print(f"The engine is not running. Its log: {save.log}", file=sys.stderr)
        tail = save.log_tail(5)
        if tail:
            print(tail, file=sys.stderr)
        return 1
    return 0


def serve_web(save: SaveDir, host: str, port: int) -> int:
    from tui.web import serve

    serve(save, host, port)
    pid = save.engine_pid()
    if pid:
        print(f"Stopped serving. {save.name.upper()} keeps training in the background (pid {pid}); "
              "realm stop to save and stop.")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    save = save_from(args)
    model = check_model(save, args.model)
    mode = check_mode(save, args.mode)
    pid = save.engine_pid()
    if pid is not None:
        print(
            f"realm: DIO is already training in the background (pid {pid}). "
            "Use `realm play` to watch or `realm stop` to stop it.",
            file=sys.stderr,
        )
        return 3
    check_overrides(check_config(save), args)
    gpus = check_gpus(args.gpus)
    fsdp = check_fsdp(save, args)
    save.create()
    save.clean_stale()
    cmd = engine_command(save, model, ["--foreground", *mode, *fsdp, *override_args(args)], gpus)
    ranks = f" on {gpus} ranks" + (", sharded (FSDP)" if fsdp else "") if gpus > 1 else ""
    print(f"Training {save.name} in the foreground{ranks}; Ctrl+C saves and stops.", flush=True)
    os.execv(cmd[0], cmd)  # become the engine: signals reach it directly
    return 0  # not reached
