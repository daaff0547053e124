"""Engine process entry: ``python -m engine --save-dir DIR [...]``.

Takes the hero's lock (one engine per hero), loads or creates the hero's config,
listens on the hero's socket, and runs the worker loop until stopped. SIGTERM and
SIGINT save loot and stop; SIGHUP is ignored (the engine outlives its terminal).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.config import MODES, HeroConfig, StartRefused, add_override_flags, apply_overrides
from engine.protocol.model_folder import model_problem, resolve_model
from engine.protocol.savedir import EngineBusy, SaveDir
from engine.store.atomic import write_json

EXIT_ALREADY_RUNNING = 3
EXIT_BAD_CONFIG = 2


class StopOnSignal:
    """SIGTERM / SIGINT ask for a saved stop, from the first instant of the process:
    a stop that arrives while torch is still loading is honoured once the loop starts."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.worker: Any = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the engine outlives its terminal

    def __call__(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name.lower()
        if self.worker is not None:
            self.worker.request_stop(self.reason)
        # A second Ctrl+C or TERM ends the process at once, without saving.
        signal.signal(signum, signal.SIG_DFL)

    def attach(self, worker: Any) -> None:
        self.worker = worker
        if self.reason is not None:
            worker.request_stop(self.reason)


def resolve_config(save: SaveDir, args: argparse.Namespace) -> tuple[HeroConfig, HeroConfig]:
    """(the hero's config, this run's). The hero's is fixed at creation; the override
    flags (--max-steps, --threads…) tune this run only and are never saved."""
    if save.config.exists():
        config = HeroConfig.load(save.config)
        if args.model and str(resolve_model(args.model)) != config.model:
            raise ValueError(
                f"hero {config.name!r} trains {config.model_label}; it cannot switch to "
                f"{args.model}. Start another hero with --hero NAME."
            )
        if args.mode and args.mode != config.mode:
            raise ValueError(
                f"hero {config.name!r} trains in mode {config.mode}; it cannot switch to "
                f"{args.mode}. Start another hero with --hero NAME."
            )
    else:
        model = str(resolve_model(args.model)) if args.model else ""
        config = HeroConfig(name=save.root.name, model=model, mode=args.mode or "full")
    return config, apply_overrides(config, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="The Realm of Training engine: trains one hero, serves the game over "
        "a Unix socket in the hero's save folder. Usually started by `realm play` or "
        "`realm train`.",
    )
    parser.add_argument("--save-dir", required=True, type=Path, help="the hero's save folder")
    parser.add_argument("--model", help="local Hugging Face model folder (new heroes only)")
    parser.add_argument("--mode", choices=MODES, help="what trains (new heroes only)")
    parser.add_argument("--foreground", action="store_true", help="print progress lines")
    parser.add_argument(
        "--fsdp", action="store_true", help="under torchrun: shard the training state (engine/train/shard.py)"
    )
    add_override_flags(parser)
    return parser


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected" per drop
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    from engine.train.team import rank_of_process, world_size

    if world_size() > 1 and rank_of_process() > 0:  # torchrun's other ranks only train
        from engine.run.replica import run_replica

        return run_replica(shard="--fsdp" in (sys.argv[1:] if argv is None else argv))
    stop = StopOnSignal()
    args = build_parser().parse_args(argv)
    save = SaveDir(args.save_dir.expanduser().absolute())
    if args.model and not save.config.exists():  # refused before a hero slot is made
        problem = model_problem(args.model)
        if problem is not None:
            print(f"realm engine: --model {args.model}: {problem}", file=sys.stderr)
            return EXIT_BAD_CONFIG
        args.model = str(resolve_model(args.model))
    try:
        save.create()
    except OSError as exc:
        print(
            f"realm engine: cannot make the hero's folder {save.root}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_BAD_CONFIG
    try:
        lock = save.take_lock()
    except EngineBusy as exc:
        print(f"realm engine: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    handlers: list[logging.Handler] = [logging.FileHandler(save.log)]
    if args.foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers
    )
    try:
        hero_config, config = resolve_config(save, args)
    except (ValueError, KeyError) as exc:
        print(f"realm engine: {exc}", file=sys.stderr)
        logging.getLogger("engine").error("%s", exc)
        return EXIT_BAD_CONFIG
    problem = fsdp_problem(args.fsdp, config.mode, config.train.precision)
    if problem:
        print(f"realm engine: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if not save.config.exists():
        write_json(save.config, json.loads(hero_config.to_json()))
    save.pid.write_text(f"{os.getpid()}\n")
    try:
        return serve(save, config, args.foreground, stop, args.fsdp)
    finally:
        save.pid.unlink(missing_ok=True)
        lock.close()


def fsdp_problem(fsdp: bool, mode: str, precision: str = "auto") -> str | None:
    from engine.train.team import world_size

    if fsdp and world_size() < 2:
        return "--fsdp shards the training over torchrun's ranks: start it with realm train --gpus N"
    if fsdp and mode != "full":
        return f"--fsdp shards a full fine-tune, and this hero trains in mode {mode}"
    if fsdp and precision == "fp16":
        return "--fsdp does not scale fp16 losses across shards: use train.precision bf16 or fp32 with it"
    return None


def serve(save: SaveDir, config: HeroConfig, foreground: bool, stop: StopOnSignal, fsdp: bool = False) -> int:
    from engine.run.server import EngineServer, load_or_create_authkey

    quiet_libraries()
    from engine.run.worker import Worker, run_with_rewinds
    from engine.train.team import Team

    server = EngineServer()
    echo = (lambda line: print(line, flush=True)) if foreground else None
    worker = Worker(save, config, server, echo=echo)
    worker.team = Team.from_env(fsdp)  # waits for torchrun's other ranks, if any
    stop.attach(worker)
    try:
        worker.start()
        server.listen(save.socket, load_or_create_authkey(save))
        code = run_with_rewinds(worker, stop.attach)
        if worker.team is not None:
            with contextlib.suppress(RuntimeError):  # a rank is gone already (why it stopped)
                worker.team.tell({"op": "stop"})  # after the stop loot: the other ranks end
                worker.team.part()
        return code
    except StartRefused as exc:  # a setting or a model folder to change, not a crash
        logging.getLogger("engine").error("%s", exc)
        server.broadcast(p.EngineFailed(error=str(exc), traceback=""))
        status = save.read_status()
        status.update(state="crashed", error=str(exc), refused=True, updated_at=time.time())
        write_json(save.status, status)
        print(f"realm engine: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except Exception as exc:
        tb = traceback.format_exc()
        logging.getLogger("engine").error("engine failed: %s\n%s", exc, tb)
        server.broadcast(p.EngineFailed(error=f"{type(exc).__name__}: {exc}", traceback=tb))
        status = save.read_status()
        status.update(
            state="crashed", error=f"{type(exc).__name__}: {exc}", refused=False, updated_at=time.time()
        )
        write_json(save.status, status)
        if foreground:
            print(f"realm engine: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        server.close(save.socket)
        if worker.team is not None:
            stop.worker.release()  # the sharded model goes before its process group (Team.close)
            worker.team.close()
