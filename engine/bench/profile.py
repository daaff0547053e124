"""Where one training step's time goes (`python -m engine.bench.profile`): host-side
packing, the forward pass with the loss, the backward pass, clipping, the optimizer step,
and what is left (Python between them). The same model, examples and step as
`realm bench`'s "ours"; each phase timed on its own, with a device sync on a GPU.
--compile turns train.compile on (the model body through torch.compile) to see whether it pays;
--masked attends packed rows with SDPA's block-diagonal mask instead of example by example
(engine/model/segments.py), to see what that saves; --unfused keeps the model's own RMSNorm
instead of engine/model/fused.py's; --malloc-default leaves glibc's malloc as it is
instead of keeping freed host memory as the engine does (engine/run/host_memory.py);
--precision fp32|bf16 overrides train.precision's auto (bf16 autocast where it runs at full speed).

Prints one line per phase (ms per step, share of the step), or one JSON object (--json).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from engine.protocol.config import BENCH_PRECISIONS

PHASES = ("packing", "forward + loss", "backward", "clip", "optimizer", "other")


def profile(args: argparse.Namespace) -> dict[str, Any]:
    from engine.bench.speed import _sync, bench_train_config, examples, pool_size
    from engine.model.fused import fused_norms, unfuse_rms_norms
    from engine.model.hatchling import hatch
    from engine.model.hero import load_hero, pick_device
    from engine.model.segments import attention_of, switch_to_sdpa
    from engine.run.host_memory import keep_freed_memory
    from engine.train.chat import ChatRenderer
    from engine.train.packing import ListSource, pack_rows
    from engine.train.trainer import Trainer, token_loss_sum

    device = pick_device()
    kept = False if args.malloc_default else keep_freed_memory()  # as the engine does at start
    torch.manual_seed(0)
    folder = Path(args.model) if args.model else hatch(Path(tempfile.mkdtemp(prefix="realm-profile-")))
    hero = load_hero(folder, device, "profile")
    model, tokenizer = hero.model, hero.tokenizer
    if args.masked:
        switch_to_sdpa(model)
    if args.unfused:
        unfuse_rms_norms(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pool = examples(
        ChatRenderer(tokenizer), pool_size(args.rows, args.seq_len, args.steps), seed=1, seq_len=args.seq_len
    )
    cfg = bench_train_config(args)
    trainer = Trainer(model, cfg, device)
    compiled_in = 0.0
    if args.compile:  # train.compile: the body compiled, the loss's chunked head eager
        began = time.perf_counter()
        warm = pack_rows(ListSource(pool[:64]), args.rows, args.seq_len, pad).to(device)
        with trainer.autocast():  # compiled for the precision the steps run in
            loss = token_loss_sum(model, warm, trainer.body)
        loss.backward()  # compiles forward and backward once
        model.zero_grad(set_to_none=True)
        compiled_in = time.perf_counter() - began
    source = ListSource(pool)
    spent: dict[str, list[float]] = {phase: [] for phase in PHASES}

    def timed(phase: str, work: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = work()
        _sync(device)
        spent[phase].append(time.perf_counter() - start)
        return out

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    for step in range(args.steps + 2):
        began = time.perf_counter()
        batch = timed("packing", lambda: pack_rows(source, args.rows, args.seq_len, pad).to(device))
        with trainer.autocast():  # the precision Trainer.step runs the forward in
            loss = timed("forward + loss", partial(mean_loss, model, batch, trainer.body))
        timed("backward", loss.backward)
        timed("clip", lambda: torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf))
        timed("optimizer", lambda: (trainer.optimizer.step(), trainer.optimizer.zero_grad(set_to_none=True)))
        total = time.perf_counter() - began
        spent["other"].append(total - sum(spent[p][-1] for p in PHASES if p != "other"))
        if step < 2:  # warm-up steps are not counted
            for phase in PHASES:
                spent[phase].pop()
    per_step = {phase: statistics.median(values) * 1000 for phase, values in spent.items()}
    whole = sum(per_step.values())
    return {
        "device": str(device),
        "rows": args.rows,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "compile": args.compile,
        "precision": str(trainer.autocast_dtype or torch.float32).removeprefix("torch."),
        "attention": attention_of(model),
        "fused_norms": fused_norms(model),
        "host_memory_kept": kept,
        "compile_s": round(compiled_in, 1),
        "ms_per_step": round(whole, 1),
        "phases_ms": {phase: round(ms, 2) for phase, ms in per_step.items()},
        "phases_share": {phase: round(ms / whole, 3) for phase, ms in per_step.items()},
    }


def mean_loss(model: Any, batch: Any, body: Any) -> Any:
    from engine.train.trainer import token_loss_sum

    return token_loss_sum(model, batch, body) / batch.target_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.profile", description=__doc__)
    parser.add_argument("--model", help="a local HF model folder (default: a fresh hatchling)")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the decoder first (its compile time is reported apart)",
    )
    parser.add_argument(
        "--masked",
        action="store_true",
        help="attend packed rows with SDPA's block-diagonal mask, not example by example",
    )
    parser.add_argument(
        "--unfused",
        action="store_true",
        help="keep the model's own RMSNorm, not engine/model/fused.py's",
    )
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc's malloc as it is, not keeping freed memory as the engine does",
    )
    parser.add_argument(
        "--precision",
        choices=BENCH_PRECISIONS,
        default="auto",
        help="train.precision (auto: bf16 autocast where bf16 runs at full speed, else fp32)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the hatchling's save would draw one before the table
    try:
        result = profile(args)
    except ValueError as error:  # e.g. --precision bf16 on a CPU without bf16 units
        print(f"python -m engine.bench.profile: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(f"  {result['precision']}, attention {result['attention']}, {args.rows} × {args.seq_len}")
        for phase in PHASES:
            print(f"  {phase:15} {result['phases_ms'][phase]:8.2f} ms  {result['phases_share'][phase]:6.1%}")
        print(f"  {'step':15} {result['ms_per_step']:8.2f} ms")
        if args.compile:
            print(f"  (torch.compile took {result['compile_s']:.1f} s before the first step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
