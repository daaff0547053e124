"""Training speed, side by side in one process: our step vs a plain padded HF loop.

`python -m engine.bench.speed` (also `realm bench`). On the same model, data, batch size
and length:

  ours      pack_rows (several examples per row, position resets, assistant-only targets)
            + Trainer.step (AdamW, clipping, the memory-lean loss, bf16 autocast where it runs
            at full speed: --precision)
  baseline  one example per row padded to seq_len, labels = the input with padding set to
            -100, ``model(**batch).loss.backward()``, AdamW: the straightforward HF loop

Both count real (non-padding) tokens. MFU = tokens/s × FLOPs per token / a peak measured
here with a large matmul in the training dtype; FLOPs per token = 6N + 12·L·d·c (PaLM,
appendix B; N counts the output layer, not the embedding lookup; with LoRA the frozen
weights get no gradient of their own: 4N + 2·adapters + 12·L·d·c), where c is the length of
the token's own example averaged over tokens (``attention_context`` in the JSON), not the
row's: packed examples never attend to each other, so that work is not model FLOPs. On a CPU the model is
a fresh hatchling; on a GPU it is Qwen3-0.6B — random weights from its published config
unless --model names a local folder (the JSON says which). Prints one JSON object with
--json (ours_tokens_per_s, baseline_tokens_per_s, ratio, mfu, peak_flops, device, …).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine.bench.output import show
from engine.model.hero import add_adapters, check_mode, has_bf16, load_hero, pick_device
from engine.model.memory import ModelShape, Numerics, estimate, sharded
from engine.protocol.config import BENCH_PRECISIONS, LoraConfig, TrainConfig
from engine.run.host_memory import keep_freed_memory
from engine.train.chat import ChatRenderer, Rendered
from engine.train.packing import IGNORE, ListSource, pack_rows
from engine.train.stream import SkillStream, Source
from engine.train.trainer import Trainer, pick_precision
from skills.registry import get_skill

QWEN3_06B: dict[str, Any] = dict(
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=151936,
    max_position_embeddings=40960,
    rope_theta=1_000_000,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)


def matmul_peak(device: torch.device, dtype: torch.dtype, trials: int = 7) -> float:
    """FLOP/s of a large square matmul in ``dtype``: the achievable peak here, the best
    of ``trials`` timings (one timing is at the mercy of a noisy machine: on this shared
    2-core VM a single one read anywhere from 52 to 175 GFLOP/s)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps = 20 if device.type == "cuda" else 10
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * reps / best


def bench_bf16(args: argparse.Namespace, device: torch.device) -> bool:
    """Whether every contender trains under bf16 autocast: --precision, decided as the
    engine decides train.precision (auto: where bf16 runs at full speed, has_bf16)."""
    return pick_precision(TrainConfig(precision=args.precision), device) is not None


def bench_train_config(args: argparse.Namespace) -> TrainConfig:
    """Our Trainer's settings in every timed loop: the bench's rows, length, --compile and
    --precision; no warm-up and a constant rate, as every contender gets."""
    return TrainConfig(
        micro_batch=args.rows,
        seq_len=args.seq_len,
        warmup_steps=0,
        schedule="constant",
        compile=getattr(args, "compile", False),
        precision=getattr(args, "precision", "auto"),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_token(model: Any, context: float) -> float:
    """2N forward + 2N for the input gradients + 2 per trained weight for its gradient:
    6N when every weight trains, about 4N with LoRA on a frozen base; plus attention,
    12 · layers · hidden · context (nanoGPT's count). ``context``: the tokens a token
    attends over — its example's length for packed examples (attention_context), not the
    row's: work spent attending across examples and then masked is not model FLOPs."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    embed = config.vocab_size * config.hidden_size
    tied = bool(getattr(config, "tie_word_embeddings", True))
    n = total if tied else total - embed  # the output layer is a matmul; the lookup is not
    return 4 * n + 2 * min(trained, n) + 12 * config.num_hidden_layers * config.hidden_size * context


def attention_context(pool: list[Rendered]) -> float:
    """The mean, over tokens, of the length of the example each belongs to (Σl² / Σl)."""
    lengths = [len(example) for example in pool]
    return sum(n * n for n in lengths) / max(1, sum(lengths))


def examples(renderer: ChatRenderer, count: int, seed: int, seq_len: int) -> list[Rendered]:
    """The game's default mix at level 1 (BIN 1.0, SY 0.1), rendered once up front; with
    rows shorter than some examples, only those that fit (the engine never cuts one)."""
    sources = [Source(get_skill("bin"), 1, 1.0), Source(get_skill("sy"), 1, 0.1)]
    stream = SkillStream(sources, renderer, seed=seed)
    pool: list[Rendered] = []
    while len(pool) < count:
        example = stream.next()
        if len(example) <= seq_len:
            pool.append(example)
    return pool


def pool_size(rows: int, seq_len: int, steps: int) -> int:
    """Examples enough for every step and a margin: skill examples are 30–80 tokens, so
    a step of rows × seq_len tokens holds up to rows · seq_len / 24 of them."""
    return (rows * seq_len // 24 + rows) * (steps + 4)


def padded_batch(
    chunk: list[Rendered], seq_len: int, pad: int, device: torch.device
) -> dict[str, torch.Tensor]:
    ids = torch.full((len(chunk), seq_len), pad, dtype=torch.long)
    mask = torch.zeros((len(chunk), seq_len), dtype=torch.long)
    for row, ex in enumerate(chunk):
        n = min(len(ex), seq_len)
        ids[row, :n] = torch.tensor(ex.input_ids[:n])
        mask[row, :n] = 1
    labels = ids.masked_fill(mask == 0, IGNORE)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak RSS


def run_ours(
    model: Any, cfg: TrainConfig, pool: list[Rendered], pad: int, device: torch.device, steps: int
) -> tuple[float, float]:
    trainer = Trainer(model, cfg, device)
    source = ListSource(pool)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tokens = 0
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            _sync(device)
            start, tokens = time.perf_counter(), 0
        result = trainer.step([pack_rows(source, cfg.micro_batch, cfg.seq_len, pad)])
        tokens += result.tokens
    _sync(device)
    return tokens / (time.perf_counter() - start), peak_memory_mb(device)


def run_baseline(
    model: Any, cfg: TrainConfig, pool: list[Rendered], pad: int, device: torch.device, steps: int
) -> tuple[float, float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    autocast = pick_precision(cfg, device) is not None
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    tokens = 0
    cursor = 0
    for i in range(steps + 2):
        if i == 2:
            _sync(device)
            start, tokens = time.perf_counter(), 0
        chunk = pool[cursor : cursor + cfg.micro_batch]
        cursor += cfg.micro_batch
        batch = padded_batch(chunk, cfg.seq_len, pad, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    _sync(device)
    return tokens / (time.perf_counter() - start), peak_memory_mb(device)


def build_model(args: argparse.Namespace, device: torch.device) -> tuple[Any, Any, str]:
    if args.model:
        hero = load_hero(Path(args.model), device, "bench")
        return hero.model, hero.tokenizer, f"{args.model} (its weights)"
    from engine.model.hatchling import build_tokenizer, hatch

    if device.type == "cuda":
        from transformers import AutoModelForCausalLM, Qwen3Config

        config = Qwen3Config(**QWEN3_06B)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").to(
            device
        )
        tokenizer = build_tokenizer(1024)  # the hatchling's tokenizer: its ids fit any vocab
        return model, tokenizer, "Qwen3-0.6B config, random init (no weights on this machine)"
    hero = load_hero(hatch(Path(tempfile.mkdtemp(prefix="realm-bench-"))), device, "bench")
    return hero.model, hero.tokenizer, "hatchling (fresh)"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Ours against its peers (engine/bench/peers.py), each run its own process, in full
    or LoRA mode; --no-peers keeps the single-process comparison with the padded loop."""
    if args.no_peers:
        return measure_in_process(args)
    from engine.bench import peers

    device = pick_device()
    torch.manual_seed(0)
    model, tokenizer, label = build_model(args, device)
    model_dir = saved(model, tokenizer, args)
    renderer = ChatRenderer(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pool = examples(renderer, pool_size(args.rows, args.seq_len, args.steps), seed=1, seq_len=args.seq_len)
    bf16 = bench_bf16(args, device)
    peak = matmul_peak(device, torch.bfloat16 if bf16 else torch.float32)
    if args.mode == "lora":  # the adapters every contender adds (after the base is saved)
        model = add_adapters(model, peers.BENCH_LORA, None)
    context = attention_context(pool)
    fpt = flops_per_token(model, context)
    shape = ModelShape.from_config(model.config)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    found = peers.compare(
        args, model_dir, pool, pad, lambda text: print(f"  {text}", file=sys.stderr, flush=True)
    )
    # Measured again after the runs, the better of the two: one measurement on this shared
    # VM once read 96 GFLOP/s where others read 159–182 (an MFU of 96%, docs/benchmarks.md).
    peak = max(peak, matmul_peak(device, torch.bfloat16 if bf16 else torch.float32))
    runs = found["contenders"]
    ours, base = runs["ours"]["tokens_per_s"]["median"], runs["padded"]["tokens_per_s"]["median"]
    memory = (runs["ours"]["peak_memory_mb"]["median"], runs["padded"]["peak_memory_mb"]["median"])
    result = figures(args, device, label, shape, (ours, base), memory, fpt, peak)
    result["repeats"] = args.repeats
    result["compile"] = args.compile
    result["attention_context"] = round(context, 1)
    peer_mfu = {name: round(info["tokens_per_s"] * fpt / peak, 4) for name, info in found["peers"].items()}
    return {**result, **found, "peer_mfu": peer_mfu}


def figures(
    args: argparse.Namespace,
    device: torch.device,
    label: str,
    shape: ModelShape,
    speeds: tuple[float, float],
    memory: tuple[float, float],
    fpt: float,
    peak: float,
) -> dict[str, Any]:
    """The keys `realm bench --json` has always had: ours and the padded baseline."""
    ours, base = speeds
    bf16 = bench_bf16(args, device)
    numerics = Numerics.of(args.precision, device.type == "cuda", has_bf16(device))
    est = estimate(shape, args.mode, (args.rows, args.seq_len), numerics)
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "model": label,
        "params": shape.params,
        "mode": args.mode,
        "dtype": "bf16 autocast" if bf16 else "fp32",
        "rows": args.rows,
        "seq_len": args.seq_len,
        "steps": args.steps,
        "ours_tokens_per_s": round(ours, 1),
        "baseline_tokens_per_s": round(base, 1),
        "ratio": round(ours / base, 3),
        "flops_per_token": fpt,
        "peak_flops": round(peak),
        "mfu": round(ours * fpt / peak, 4),
        "baseline_mfu": round(base * fpt / peak, 4),
        "ours_peak_memory_mb": round(memory[0], 1),
        "baseline_peak_memory_mb": round(memory[1], 1),
        "estimate_gib": est.as_dict(),
    }


def saved(model: Any, tokenizer: Any, args: argparse.Namespace) -> str:
    """A folder every contender loads the same initial weights from."""
    if args.model:
        return str(args.model)
    folder = tempfile.mkdtemp(prefix="realm-bench-init-")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure_in_process(args: argparse.Namespace) -> dict[str, Any]:
    keep_freed_memory()  # as the engine does at start; the padded loop shares this process
    device = pick_device()
    check_mode(args.mode, device)
    torch.manual_seed(0)
    model, tokenizer, label = build_model(args, device)
    renderer = ChatRenderer(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    cfg = bench_train_config(args)
    per_step = args.rows * 16  # enough examples for packing many per row
    pool = examples(renderer, per_step * (args.steps + 4), seed=1, seq_len=cfg.seq_len)
    bf16 = bench_bf16(args, device)
    peak = matmul_peak(device, torch.bfloat16 if bf16 else torch.float32)
    baseline_model = copy.deepcopy(model)
    if args.mode == "lora":
        model = add_adapters(model, LoraConfig(), None)
        baseline_model = add_adapters(baseline_model, LoraConfig(), None)
    fpt = flops_per_token(model, attention_context(pool))
    ours, ours_mem = run_ours(model, cfg, pool, pad, device, args.steps)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    compiled = torch.compile(baseline_model) if args.compile else baseline_model
    base, base_mem = run_baseline(compiled, cfg, pool, pad, device, args.steps)
    shape = ModelShape.from_config(baseline_model.config)
    return figures(args, device, label, shape, (ours, base), (ours_mem, base_mem), fpt, peak)


def memory_estimates(args: argparse.Namespace) -> dict[str, Any]:
    """What each mode would need for --model (its config.json only) or Qwen3-0.6B."""
    from transformers import AutoConfig, Qwen3Config

    config = AutoConfig.from_pretrained(args.model) if args.model else Qwen3Config(**QWEN3_06B)
    shape = ModelShape.from_config(config)
    gpu = torch.cuda.is_available()
    bf16 = gpu and has_bf16(torch.device("cuda"))
    out: dict[str, Any] = {
        "model": args.model or "Qwen3-0.6B (published config)",
        "params": shape.params,
        "rows": args.rows,
        "seq_len": args.seq_len,
        "assumes": "a bf16 GPU" if bf16 or not gpu else "an fp32 GPU",
    }
    for mode in ("full", "lora", "qlora"):
        for ckpt in (False, True):
            numerics = Numerics.of("auto", gpu=True, bf16_units=bf16 or not gpu)
            est = estimate(shape, mode, (args.rows, args.seq_len), numerics, checkpointing=ckpt)
            out[f"{mode}{'_checkpointed' if ckpt else ''}_gib"] = est.as_dict()
            if mode == "full" and args.shards > 1:  # realm train --gpus N --fsdp: rank 0, the fullest
                key = f"full_fsdp_{args.shards}{'_checkpointed' if ckpt else ''}_gib"
                out[key] = sharded(est, shape, args.shards).as_dict()
    if gpu:
        out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="realm bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="a local HF model folder (default: hatchling on CPU, Qwen3-0.6B config on GPU)"
    )
    parser.add_argument("--mode", choices=("full", "lora"), default="full")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop (default 20)")
    parser.add_argument("--rows", type=int, default=8, help="rows per step (default 8)")
    parser.add_argument("--seq-len", type=int, default=256, help="row length (default 256)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--precision",
        choices=BENCH_PRECISIONS,
        default="auto",
        help="every contender's: auto (bf16 autocast where bf16 runs at full speed: a GPU, or a "
        "CPU with AVX512_BF16/AMX; else fp32, as train.precision decides), fp32 or bf16",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each contender, alternating (default 3)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile every contender: ours with train.compile, TRL and the Trainer with "
        "torch_compile=True, the padded loop's model (compiles are left out of the timing)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="only ours vs the padded loop, in one process (skips TRL and the transformers Trainer)",
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="only the memory estimate for full, lora and qlora (no training; --model or Qwen3-0.6B)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        help="--estimate: also full sharded over N GPUs (--fsdp), rank 0's share",
    )
    args = parser.parse_args(argv)
    try:  # a precision this machine cannot run is said before any model is built
        bench_bf16(args, pick_device())
    except ValueError as exc:
        print(f"realm bench: {exc}", file=sys.stderr)
        return 2
    if args.estimate:
        result = memory_estimates(args)
        print(json.dumps(result) if args.json else "\n".join(f"  {k:8} {v}" for k, v in result.items()))
        return 0
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    result = measure(args)
    if "contenders" in result and not args.json:
        from engine.bench.peers import table

        print(table(result))
        result = {k: v for k, v in result.items() if k not in ("contenders", "peers", "skipped")}
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
