"""Our training step against what a practitioner would run instead (`realm bench`).

  ours        pack_rows (examples packed into rows, position_ids restarting per example,
              assistant-only targets) + Trainer.step
  trl         TRL's SFTTrainer: packing_strategy="bfd" (padding-free: a batch is one
              flattened row, position_ids restart per example), completion-only loss
  trl_liger   the same with use_liger_kernel=True, the kernels a TRL user turns on for
              speed (Triton: a CUDA GPU with liger-kernel installed; skipped elsewhere)
  hf_flatten  transformers' Trainer + DataCollatorWithFlattening (the same padding-free
              layout, labels -100 outside the answers)
  padded      the floor: one example per row, padded to the batch's longest (what a
              collator with padding=True gives), a plain loop

Every contender gets the same thing: the weights of one saved folder, the same examples
(pre-tokenised: the same ids and answer masks) in the same order, about the same target
tokens per optimizer step (peers batch as many examples as our packing puts in a step),
AdamW with our betas, weight decay and clipping, a constant learning rate, the same
precision (--precision; auto: bf16 autocast where bf16 runs at full speed — a GPU, or a
CPU with AVX512_BF16 or AMX — else fp32, as the engine decides), no gradient
checkpointing. TRL's own defaults turn bf16 and gradient checkpointing on; with those it
looked 34× slower than us at first (docs/benchmarks.md), so both are set here as for every
other contender, as a competent user would.

With --mode lora every contender trains the same peft LoRA adapters (our defaults, dropout
off so the losses stay comparable), added to the same weights with the same seed: TRL and
the transformers Trainer get the peft model, as a user who calls get_peft_model would pass.

"ours" runs as the engine does, freed host memory kept (engine/run/host_memory.py); the
peers get glibc's default, as their users do (set the MALLOC_* variables that module names
to give every contender the same).

Each run is its own process (clean memory, its own peak), contenders alternate, and the
summary keeps min/median/max of the repeats. The first losses of each contender are kept
too: on the same data they must agree, or the comparison is of a mis-configured peer.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.protocol.config import BENCH_PRECISIONS, LoraConfig

CONTENDERS = ("ours", "trl", "trl_liger", "hf_flatten", "padded")
PEERS = ("trl", "trl_liger", "hf_flatten", "padded")
OPTIONAL = ("trl_liger",)  # peers whose failure is reported in "skipped" rather than ending the bench
WARMUP = 2  # steps left out of the timing


def warmup(args: argparse.Namespace) -> int:
    """Steps left out of the timing: with --compile also the peers' recompiles (their
    padding-free batches change shape every step until torch marks the length dynamic)."""
    return WARMUP + 3 if getattr(args, "compile", False) else WARMUP


FIRST_LOSSES = 5
SAME_BATCH = 8  # examples every contender scores with its own loss before training
AGREE = 1e-3  # relative: on the same batch and weights, every loss must be ours
MISSING = {"trl": ("trl",), "trl_liger": ("trl", "liger_kernel"), "hf_flatten": ("datasets",)}  # modules
BENCH_LORA = LoraConfig(dropout=0.0)  # our adapter defaults; dropout would make losses differ


# ---------------------------------------------------------------------- one run (a child)


class Recorder:
    """Times and tokens of each optimizer step, and the first losses."""

    def __init__(self, warmup: int = WARMUP) -> None:
        self.warmup = warmup
        self.same_batch_loss = math.nan  # its loss on the first SAME_BATCH examples, before training
        self.ends: list[float] = []
        self.tokens: list[int] = []
        self.targets: list[int] = []
        self.losses: list[float] = []

    def summary(self, device: Any) -> dict[str, Any]:
        from engine.bench.speed import peak_memory_mb

        timed = slice(self.warmup, len(self.ends))
        seconds = self.ends[-1] - self.ends[self.warmup - 1]
        tokens, targets = sum(self.tokens[timed]), sum(self.targets[timed])
        return {
            "tokens_per_s": tokens / seconds,
            "target_tokens_per_s": targets / seconds,
            "target_tokens_per_step": targets / max(1, len(self.ends) - self.warmup),
            "first_losses": [round(x, 4) for x in self.losses[:FIRST_LOSSES]],
            "same_batch_loss": self.same_batch_loss,
            "peak_memory_mb": round(peak_memory_mb(device), 1),
        }


def counted(collate: Any, recorder: Recorder) -> Any:
    """A data collator that also counts each batch's real and target tokens."""

    def collate_and_count(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(features)
        labels = batch["labels"]
        recorder.targets.append(int((labels[:, 1:] != -100).sum()))
        mask = batch.get("attention_mask")
        recorder.tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch

    return collate_and_count


def hf_arguments(args: argparse.Namespace, out: str, batch: int, bf16: bool) -> dict[str, Any]:
    """TrainingArguments both Trainer-based peers share: our optimizer, no extras."""
    from engine.protocol.config import TrainConfig

    cfg = TrainConfig()
    return dict(
        output_dir=out,
        per_device_train_batch_size=batch,
        max_steps=warmup(args) + args.steps,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=cfg.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.95,
        max_grad_norm=cfg.grad_clip,
        optim="adamw_torch",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        train_sampling_strategy="sequential",  # the same order as ours
        seed=0,
        bf16=bf16,
        gradient_checkpointing=False,
        use_cpu=not _cuda(),
        torch_compile=args.compile,  # what a user of these trainers turns on to compile
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def clock(recorder: Recorder) -> Any:
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            from engine.bench.speed import _sync
            from engine.model.hero import pick_device

            _sync(pick_device())
            recorder.ends.append(time.perf_counter())

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if logs and "loss" in logs:
                recorder.losses.append(float(logs["loss"]))

    return StepClock()


def run_ours(args: argparse.Namespace, model: Any, pool: list[Any], pad: int, device: Any) -> Recorder:
    import torch

    from engine.bench.speed import _sync, bench_train_config
    from engine.train.packing import ListSource, pack_rows
    from engine.train.trainer import Trainer, token_loss_sum

    trainer = Trainer(model, bench_train_config(args), device)
    source, recorder = ListSource(pool), Recorder(warmup(args))
    with torch.no_grad():
        first = pack_rows(ListSource(pool[:SAME_BATCH]), None, args.seq_len, pad).to(device)
        recorder.same_batch_loss = float(token_loss_sum(model, first)) / first.target_tokens
    for _ in range(warmup(args) + args.steps):
        batch = pack_rows(source, args.rows, args.seq_len, pad)
        result = trainer.step([batch])
        _sync(device)
        recorder.ends.append(time.perf_counter())
        recorder.tokens.append(result.tokens)
        recorder.targets.append(result.target_tokens)
        recorder.losses.append(result.loss)
    return recorder


def run_padded(args: argparse.Namespace, model: Any, pool: list[Any], pad: int, device: Any) -> Recorder:
    """One example per row, padded; labels only on the answers; our optimizer settings."""
    import torch

    from engine.bench.speed import _sync, bench_bf16, padded_batch
    from engine.protocol.config import TrainConfig

    cfg = TrainConfig()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        weight_decay=cfg.weight_decay,
    )
    autocast = bench_bf16(args, device)
    model.train()
    recorder, cursor = Recorder(warmup(args)), 0

    def answers_only(chunk: list[Any]) -> dict[str, Any]:
        # Padded to the batch's longest example, as a collator with padding=True does.
        batch = padded_batch(chunk, max(len(ex) for ex in chunk), pad, device)
        for row, ex in enumerate(chunk):  # completion-only, like every other contender
            keep = torch.tensor(ex.trainable, device=device)
            batch["labels"][row, : len(ex)] = batch["labels"][row, : len(ex)].masked_fill(~keep, -100)
        return batch

    with torch.no_grad():
        recorder.same_batch_loss = float(model(**answers_only(pool[:SAME_BATCH])).loss)
    if args.compile:
        model = torch.compile(model)
    for _ in range(warmup(args) + args.steps):
        chunk = pool[cursor : cursor + args.examples_per_step]
        cursor += args.examples_per_step
        batch = answers_only(chunk)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        recorder.ends.append(time.perf_counter())
        recorder.tokens.append(int(batch["attention_mask"].sum()))
        recorder.targets.append(int((batch["labels"][:, 1:] != -100).sum()))
        recorder.losses.append(float(loss))
    return recorder


def run_trl(
    args: argparse.Namespace, model: Any, pool: list[Any], tokenizer: Any, bf16: bool, liger: bool = False
) -> Recorder:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = Dataset.from_dict(
        {
            "input_ids": [list(ex.input_ids) for ex in pool],
            "completion_mask": [[int(t) for t in ex.trainable] for ex in pool],
        }
    )
    recorder = Recorder(warmup(args))
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(
            max_length=args.seq_len,
            packing=True,
            packing_strategy="bfd",
            padding_free=True,
            completion_only_loss=True,
            use_liger_kernel=liger,
            **hf_arguments(args, out, args.rows, bf16),
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[clock(recorder)],
        )
        # TRL folds completion_mask into labels while it packs: it must keep every answer token.
        rows: Any = trainer.train_dataset
        folded = sum(sum(int(label != -100) for label in row["labels"]) for row in rows)
        expected = sum(sum(ex.trainable) for ex in pool)
        recorder.same_batch_loss = same_batch_loss(trainer, labelled(pool[:SAME_BATCH]))
        if folded != expected:
            recorder.same_batch_loss = math.nan  # mis-configured: the losses cannot agree
        trainer.data_collator = counted(trainer.data_collator, recorder)
        trainer.train()
    return recorder


def labelled(pool: list[Any]) -> list[dict[str, list[int]]]:
    """Examples as (input_ids, labels): -100 outside the answers (the model shifts)."""
    return [
        {
            "input_ids": list(ex.input_ids),
            "labels": [t if keep else -100 for t, keep in zip(ex.input_ids, ex.trainable, strict=True)],
        }
        for ex in pool
    ]


def same_batch_loss(trainer: Any, features: list[dict[str, list[int]]]) -> float:
    """The peer's own loss (its collator, its compute_loss) on the first examples."""
    import torch

    batch = trainer._prepare_inputs(trainer.data_collator(features))
    with torch.no_grad():
        return float(trainer.compute_loss(trainer.model, batch))


def run_hf_flatten(args: argparse.Namespace, model: Any, pool: list[Any], bf16: bool) -> Recorder:
    from datasets import Dataset
    from transformers import DataCollatorWithFlattening, Trainer, TrainingArguments

    data = Dataset.from_dict(
        {
            "input_ids": [list(ex.input_ids) for ex in pool],
            "labels": [
                [t if keep else -100 for t, keep in zip(ex.input_ids, ex.trainable, strict=True)]
                for ex in pool
            ],
        }
    )
    recorder = Recorder(warmup(args))
    with tempfile.TemporaryDirectory() as out:
        hf_args = TrainingArguments(**hf_arguments(args, out, args.examples_per_step, bf16))
        collator = counted(DataCollatorWithFlattening(), recorder)
        trainer = Trainer(
            model=model, args=hf_args, train_dataset=data, data_collator=DataCollatorWithFlattening()
        )
        recorder.same_batch_loss = same_batch_loss(trainer, labelled(pool[:SAME_BATCH]))
        trainer.data_collator = collator
        trainer.add_callback(clock(recorder))
        trainer.train()
    return recorder


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from engine.bench.speed import bench_bf16, examples
    from engine.model.fused import unfuse_rms_norms
    from engine.model.hero import add_adapters, load_hero, pick_device
    from engine.model.segments import switch_to_sdpa
    from engine.run.host_memory import keep_freed_memory
    from engine.train.chat import ChatRenderer

    device = pick_device()
    if args.one == "ours":  # what the engine does at start (engine/run/host_memory.py)
        keep_freed_memory()
    torch.manual_seed(0)
    hero = load_hero(Path(args.model_dir), device, "bench")
    model, tokenizer = hero.model, hero.tokenizer
    if args.one != "ours":  # the peers run the model as transformers loads it
        unfuse_rms_norms(model)
        switch_to_sdpa(model)
    if args.mode == "lora":
        model = add_adapters(model, BENCH_LORA, None)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pool = examples(ChatRenderer(tokenizer), args.pool, seed=1, seq_len=args.seq_len)
    bf16 = bench_bf16(args, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if args.one == "ours":
        recorder = run_ours(args, model, pool, pad, device)
    elif args.one == "padded":
        recorder = run_padded(args, model, pool, pad, device)
    elif args.one in ("trl", "trl_liger"):
        recorder = run_trl(args, model, pool, tokenizer, bf16, liger=args.one == "trl_liger")
    else:
        recorder = run_hf_flatten(args, model, pool, bf16)
    return recorder.summary(device)


# ---------------------------------------------------------------------- the comparison (the parent)


def missing(name: str) -> str | None:
    """Why a peer cannot run here (a package not installed, no GPU for Liger), else None."""
    import importlib.util

    for module in MISSING.get(name, ()):
        if importlib.util.find_spec(module) is None:
            if module == "liger_kernel":
                return "liger-kernel is not installed: pip install liger-kernel (on a CUDA machine)"
            return f"{module} is not installed: pip install 'realm-of-training[bench]'"
    if name == "trl_liger" and not _cuda():
        return "Liger's kernels are Triton: they need a CUDA GPU"
    return None


def examples_per_step(pool: list[Any], rows: int, seq_len: int, steps: int, pad: int) -> int:
    """How many examples our packing puts in one step: the peers batch that many."""
    from engine.train.packing import ListSource, pack_rows

    source = ListSource(pool)
    counts = [pack_rows(source, rows, seq_len, pad).examples for _ in range(steps)]
    return max(1, round(sum(counts) / len(counts)))


def child(name: str, args: argparse.Namespace, model_dir: str, per_step: int, pool: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "engine.bench.peers", "--one", name, "--model-dir", model_dir,
           "--mode", args.mode, "--rows", str(args.rows), "--seq-len", str(args.seq_len), "--steps", str(args.steps),
           "--examples-per-step", str(per_step), "--pool", str(pool), "--precision", args.precision]  # fmt: skip
    cmd += ["--compile"] if args.compile else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{name} failed: {' | '.join(tail)}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 1),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def compare(
    args: argparse.Namespace, model_dir: str, pool: list[Any], pad: int, progress: Any
) -> dict[str, Any]:
    """Every contender ``args.repeats`` times, alternating; min/median/max of each."""
    per_step = examples_per_step(pool, args.rows, args.seq_len, warmup(args) + args.steps, pad)
    names = [n for n in CONTENDERS if missing(n) is None]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    failed: dict[str, str] = {}
    for round_ in range(args.repeats):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]  # who goes first rotates
        for name in order:
            if name in failed:
                continue
            progress(f"run {round_ + 1}/{args.repeats}: {name}")
            try:
                runs[name].append(child(name, args, model_dir, per_step, len(pool)))
            except RuntimeError as error:
                if name not in OPTIONAL:
                    raise
                failed[name] = str(error)  # an optional peer's failure is reported, not fatal
                del runs[name]
    return summarise(runs, per_step, failed)


def summarise(
    runs: dict[str, list[dict[str, Any]]], per_step: int, failed: dict[str, str] | None = None
) -> dict[str, Any]:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    ours = median("ours", "tokens_per_s")
    reference = runs["ours"][0]["same_batch_loss"]
    out: dict[str, Any] = {"examples_per_step": per_step, "contenders": {}}
    for name, results in runs.items():
        losses = results[0]["first_losses"]
        same = results[0]["same_batch_loss"]
        out["contenders"][name] = {
            "tokens_per_s": spread([r["tokens_per_s"] for r in results]),
            "target_tokens_per_s": spread([r["target_tokens_per_s"] for r in results]),
            "target_tokens_per_step": round(median(name, "target_tokens_per_step"), 1),
            "peak_memory_mb": spread([r["peak_memory_mb"] for r in results]),
            "first_losses": losses,
            "same_batch_loss": round(same, 5),
            "losses_agree": abs(same - reference) <= AGREE * abs(reference),
        }
    out["peers"] = {
        name: {
            "tokens_per_s": round(median(name, "tokens_per_s"), 1),
            "target_tokens_per_s": round(median(name, "target_tokens_per_s"), 1),
            "ratio": round(ours / median(name, "tokens_per_s"), 3),
            "first_losses": runs[name][0]["first_losses"],
            "losses_agree": out["contenders"][name]["losses_agree"],
        }
        for name in runs
        if name != "ours"
    }
    out["skipped"] = {n: why for n in PEERS if (why := missing(n)) is not None} | (failed or {})
    return out


def table(result: dict[str, Any]) -> str:
    """The comparison as a person reads it (the JSON holds the same and more)."""
    lines = [f"  {'contender':11} {'tokens/s (min/median/max)':>27} {'answer tok/s':>13} {'ours ÷':>7} "
             f"{'peak MB':>8} {'same-batch loss':>16}"]  # fmt: skip
    ours = result["contenders"]["ours"]["tokens_per_s"]["median"]
    for name, info in result["contenders"].items():
        t = info["tokens_per_s"]
        ratio = "" if name == "ours" else f"{ours / t['median']:.2f}×"
        agree = "" if info["losses_agree"] else " DISAGREES"
        lines.append(
            f"  {name:11} {t['min']:>8,.0f} /{t['median']:>8,.0f} /{t['max']:>8,.0f} "
            f"{info['target_tokens_per_s']['median']:>13,.0f} {ratio:>7} {info['peak_memory_mb']['median']:>8,.0f} "
            f"{info['same_batch_loss']:>16.5f}{agree}"
        )
    for name, why in result.get("skipped", {}).items():
        lines.append(f"  {name:11} skipped: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.peers", description=__doc__)
    parser.add_argument("--one", choices=CONTENDERS, required=True, help="run this contender once")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--mode", choices=("full", "lora"), default="full")
    parser.add_argument("--compile", action="store_true", help="torch.compile every contender")
    parser.add_argument("--precision", choices=BENCH_PRECISIONS, default="auto", help="as realm bench's")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--examples-per-step", type=int, default=32)
    parser.add_argument("--pool", type=int, default=4096)
    args = parser.parse_args(argv)
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    print(json.dumps(run_one(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
