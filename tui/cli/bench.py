"""`realm bench`: every measurement runs in an engine-side process (torch is never
imported by the game's process)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from engine.protocol.config import PRECISIONS
from tui.cli.common import at_least


def add_parsers(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="measure: training speed vs TRL and the HF Trainer (+MFU), the game's cost, evals, quests, memory",
        description="Default: our training step vs what a practitioner would run instead — TRL's "
        "SFTTrainer (packing bfd, padding-free, completion-only loss), transformers' Trainer with "
        "DataCollatorWithFlattening, and a padded loop as the floor — on the same initial weights, "
        "examples, target tokens per step and optimizer, each run its own process, alternating, "
        "min/median/max of --repeats: tokens/s (all and answer tokens), the ratio, MFU against a "
        "matmul peak measured at start, peak memory, and each one's loss on the same first batch "
        "(they must agree). A hatchling on a CPU; Qwen3-0.6B on a GPU. TRL needs the bench extra: "
        "pip install 'realm-of-training[bench]'. --game: what the game costs training (tokens/s headless vs "
        "watched, pause latency, first frame, memory); a few minutes on a 2-core CPU.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--steps", type=at_least(1), help="timed steps (default 20; --game: 150 per run)")
    bench.add_argument("--rows", type=at_least(1), help="rows per step (default 8)")
    bench.add_argument("--seq-len", type=at_least(16), help="tokens per row (default 256)")
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
        "--vault",
        action="store_true",
        help="instead: vault size after --steps (default 1000) with 50 quests, default policy vs the old "
        "rule, and the Oracle's time to first token and tokens/s",
    )
    kind.add_argument(
        "--tasks",
        action="store_true",
        help="instead: share of time the default schedule spends on evals, pause latency while one runs",
    )
    kind.add_argument(
        "--sparring",
        action="store_true",
        help="instead: accuracy on DIO's missed problems after a sparring quest vs as many plain steps",
    )
    kind.add_argument(
        "--campaign",
        action="store_true",
        help="instead: a two-phase campaign with and without the rehearsal buffer: what the specialist "
        "phase makes DIO forget",
    )
    kind.add_argument(
        "--growth",
        action="store_true",
        help="instead: a fresh hatchling's learning curve (step, minutes, each skill's level and accuracy)",
    )
    bench.add_argument(
        "--minutes", type=at_least(0.1, float), help="--growth: how long to train (default 20)"
    )
    kind.add_argument(
        "--estimate",
        action="store_true",
        help="instead: the memory estimate for full, lora and qlora (no training); with --gpus N, also "
        "a full fine-tune sharded over N GPUs (realm train --gpus N --fsdp), rank 0's share",
    )
    bench.add_argument(
        "--gpus",
        type=at_least(2),
        metavar="N",
        help="--estimate: also the full fine-tune sharded over N GPUs",
    )
    kind.add_argument(
        "--soak",
        type=at_least(1),
        metavar="N",
        help="instead: kill -9 a training engine N times and count lost or inconsistent loot and quests",
    )
    kind.add_argument(
        "--gpu-paths",
        action="store_true",
        help="instead: every training path run once (full, lora, qlora on a 4-bit base, bf16, flash-attention, "
        "NVML, a real OOM recovered), with peak memory vs the estimate: Qwen3-0.6B-shaped on a GPU, "
        "the hatchling on a CPU (the GPU-only checks then say why they were skipped)",
    )
    bench.add_argument(
        "--repeats",
        type=at_least(1),
        help="runs of each contender, alternating (default 3; --game: runs of each kind, default 2)",
    )
    bench.add_argument(
        "--compile",
        action="store_true",
        help="speed: torch.compile every contender (ours with train.compile, the peers with torch_compile)",
    )
    bench.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="speed: every contender's precision (default auto: bf16 autocast where bf16 runs at full "
        "speed, a GPU or a CPU with AVX512_BF16/AMX units, as train.precision decides; else fp32)",
    )
    bench.add_argument(
        "--no-peers",
        action="store_true",
        help="speed: only ours vs the padded loop in one process (no TRL, no transformers Trainer)",
    )
    bench.add_argument(
        "--seeds", type=at_least(1), help="--sparring: repeat with training seeds 1..N (default 1)"
    )
    bench.set_defaults(run=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.game:
        cmd = [sys.executable, "-m", "engine.bench.game", "--repeats", str(args.repeats or 2)]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        cmd += ["--json"] if args.json else []
        return subprocess.call(cmd)
    if args.soak is not None:
        cmd = [sys.executable, "-m", "engine.bench.soak", "--kills", str(args.soak)]
        return subprocess.call(cmd + (["--json"] if args.json else []))
    if args.campaign:
        cmd = [sys.executable, "-m", "engine.bench.campaign"]
        cmd += ["--steps1", str(args.steps), "--steps2", str(args.steps)] if args.steps else []
        return subprocess.call(cmd + (["--json"] if args.json else []))
    if args.growth:
        cmd = [sys.executable, "-m", "engine.bench.growth"]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        cmd += ["--minutes", str(args.minutes)] if args.minutes else []
        return subprocess.call(cmd + (["--json"] if args.json else []))
    if args.vault or args.tasks or args.sparring:
        module = "vault" if args.vault else "tasks" if args.tasks else "sparring"
        cmd = [sys.executable, "-m", f"engine.bench.{module}"]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        cmd += ["--seeds", str(args.seeds)] if args.seeds and args.sparring else []
        return subprocess.call(cmd + (["--json"] if args.json else []))
    if args.gpu_paths:
        cmd = [sys.executable, "-m", "engine.bench.gpu_paths"]
        for flag in ("steps", "rows", "seq_len"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        return subprocess.call(cmd + (["--json"] if args.json else []))
    if args.evals or args.quests:
        module = "engine.bench.evals" if args.evals else "engine.bench.quests"
        return subprocess.call([sys.executable, "-m", module])
    cmd = [sys.executable, "-m", "engine.bench.speed"]
    for flag in ("steps", "rows", "seq_len", "model", "mode", "repeats", "precision"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    cmd += ["--json"] if args.json else []
    cmd += ["--no-peers"] if args.no_peers else []
    cmd += ["--compile"] if args.compile else []
    cmd += ["--estimate"] if args.estimate else []
    cmd += ["--shards", str(args.gpus)] if args.estimate and args.gpus else []
    return subprocess.call(cmd)
