"""Every training path of the engine, run once for real (`realm bench --gpu-paths`).

On a CUDA GPU the model is Qwen3-0.6B-shaped (its published config, random weights, the
hatchling's tokenizer: nothing to download); on a CPU it is the hatchling, so the same
run is tested where no GPU is (qlora, the OOM and NVML then say why they were skipped).

For each mode (full, lora, qlora) the model is loaded as the engine loads a hero
(`load_hero`: fp32 master weights for full, a bf16 base for lora, a 4-bit NF4 base for
qlora, flash-attention 2 where installed and the weights are 16-bit) and trains a few
steps of the game's own examples with the engine's Trainer (bf16 autocast where the GPU
has it; then full once more with train.precision fp16, as on a T4 or V100). Each mode reports its attention kernel, autocast dtype, tokens/s, first and last
loss, and the measured peak memory beside the estimate the start screen shows.
Then a real out-of-memory: a micro-batch far past what fits, which the Trainer must
survive by halving it on the same rows. NVML is read right after the full mode's steps.

One JSON object with --json (what docs/benchmarks.md records, with the device's name).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

MODES = ("full", "lora", "qlora")


def model_folder(device: torch.device) -> tuple[Path, str]:
    """A saved folder every mode loads from: `realm bench`'s model (Qwen3-0.6B-shaped on a
    GPU, a fresh hatchling elsewhere), saved once."""
    from engine.bench.speed import build_model, saved

    torch.manual_seed(0)
    model, tokenizer, label = build_model(argparse.Namespace(model=None), device)
    folder = Path(saved(model, tokenizer, argparse.Namespace(model=None)))
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return folder, label


def train_mode(
    folder: Path, mode: str, args: argparse.Namespace, device: torch.device, precision: str = "auto"
) -> dict[str, Any]:
    """A few steps in ``mode``, timed after two warm-up steps (``precision``: train.precision)."""
    from engine.bench.speed import _sync, examples, peak_memory_mb, pool_size
    from engine.model.hero import HeroLoadError, has_bf16, load_hero
    from engine.model.memory import ModelShape, Numerics, estimate
    from engine.protocol.config import TrainConfig
    from engine.train.chat import ChatRenderer
    from engine.train.packing import ListSource, pack_rows
    from engine.train.trainer import Trainer, pick_precision

    try:
        hero = load_hero(folder, device, "gpu-paths", mode)
    except HeroLoadError as exc:
        return {"skipped": str(exc)}
    model, tokenizer = hero.model, hero.tokenizer
    cfg = TrainConfig(
        micro_batch=args.rows, seq_len=args.seq_len, warmup_steps=0, schedule="constant", precision=precision
    )
    pad = tokenizer.pad_token_id
    pool = examples(ChatRenderer(tokenizer), pool_size(args.rows, args.seq_len, args.steps), 1, args.seq_len)
    source = ListSource(pool)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = Trainer(model, cfg, device)
    losses: list[float] = []
    overflows = 0
    tokens, start = 0, time.perf_counter()
    for step in range(args.steps + 2):
        if step == 2:
            _sync(device)
            tokens, start = 0, time.perf_counter()
        result = trainer.step([pack_rows(source, args.rows, args.seq_len, pad)])
        tokens += result.tokens
        losses.append(result.loss)
        overflows += result.overflow
    _sync(device)
    seconds = time.perf_counter() - start
    config = model.config
    autocast = pick_precision(cfg, device)
    numerics = Numerics.of(cfg.precision, device.type == "cuda", has_bf16(device))
    est = estimate(ModelShape.from_config(config), mode, (args.rows, args.seq_len), numerics)
    out = {
        "attention": getattr(config, "_attn_implementation", "?"),
        "weights_dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "autocast": str(autocast).removeprefix("torch.") if autocast else "none (fp32)",
        "four_bit_layers": sum("4bit" in type(m).__name__ for m in model.modules()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "tokens_per_s": round(tokens / seconds, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
        "losses_finite": all(math.isfinite(x) for x in losses),
        "fp16_overflow_steps": overflows if trainer.scaler is not None else None,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "peak_is": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "estimate_gib": est.as_dict(),
    }
    del trainer, model, hero
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def out_of_memory(folder: Path, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """A full-mode step with a micro-batch that cannot fit: the Trainer must halve it
    (on the same rows) until it does, and the step must still train."""
    if device.type != "cuda":
        return {"skipped": "a real OOM needs a GPU (on a CPU it would swap, not fail)"}
    from engine.bench.speed import examples
    from engine.model.hero import load_hero
    from engine.protocol.config import TrainConfig
    from engine.train.chat import ChatRenderer
    from engine.train.packing import ListSource, pack_rows
    from engine.train.trainer import Trainer

    hero = load_hero(folder, device, "gpu-paths-oom", "full")
    rows = args.oom_rows
    cfg = TrainConfig(micro_batch=rows, seq_len=args.seq_len, warmup_steps=0, schedule="constant")
    pool = examples(ChatRenderer(hero.tokenizer), rows * args.seq_len // 24 + rows, 2, args.seq_len)
    batch = pack_rows(ListSource(pool), rows, args.seq_len, hero.tokenizer.pad_token_id)
    began = time.perf_counter()
    result = Trainer(hero.model, cfg, device).step([batch])
    return {
        "rows_asked": rows,
        "tokens": result.tokens,
        "oom_splits": result.oom_splits,
        "rows_that_fit": rows // 2**result.oom_splits,
        "loss": round(result.loss, 4),
        "recovered": result.oom_splits > 0 and math.isfinite(result.loss),
        "seconds": round(time.perf_counter() - began, 1),
    }


def telemetry() -> dict[str, Any]:
    from dataclasses import asdict

    from engine.model.gpu import GpuProbe

    return asdict(GpuProbe().read())


def run(args: argparse.Namespace) -> dict[str, Any]:
    from transformers.utils import is_flash_attn_2_available

    from engine.model.hero import has_bf16, has_fp16, pick_device

    device = pick_device()
    folder, label = model_folder(device)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": label,
        "torch": torch.__version__,
        "bf16_supported": has_bf16(device),
        "flash_attn_2_installed": is_flash_attn_2_available(),
        "rows": args.rows,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "modes": {},
    }
    try:
        import bitsandbytes

        result["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        result["bitsandbytes"] = None
    for mode in MODES:
        print(f"  {mode}…", flush=True, file=sys.stderr)
        result["modes"][mode] = train_mode(folder, mode, args, device)
        if mode == "full":  # right after its steps: the memory it held, the load it ran at
            result["nvml_after_full"] = telemetry()
    # train.precision fp16 (loss scaling), for GPUs without bf16 units: every GPU runs it
    result["modes"]["full_fp16"] = (
        train_mode(folder, "full", args, device, "fp16")
        if has_fp16(device)
        else {"skipped": "fp16 would be emulated on this CPU (the engine refuses it here)"}
    )
    result["out_of_memory"] = (
        out_of_memory(folder, args, device) if not args.no_oom else {"skipped": "--no-oom"}
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="realm bench --gpu-paths", description=__doc__)
    parser.add_argument("--rows", type=int, default=8, help="rows per step (default 8)")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per row (default 1024)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode (default 10)")
    parser.add_argument(
        "--oom-rows", type=int, default=512, help="the micro-batch that must not fit (default 512)"
    )
    parser.add_argument("--no-oom", action="store_true", help="skip the out-of-memory check")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    result = run(args)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
