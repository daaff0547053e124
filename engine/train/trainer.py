"""One optimizer step, written out: micro-batches, loss on assistant tokens only,
gradient accumulation, clipping, the watchdog's verdict, AdamW, warmup + cosine
learning rate."""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from engine.model.hero import has_bf16, has_fp16
from engine.model.segments import plan_if_it_pays, unwrapped, use_segments
from engine.protocol.config import SettingRefused, TrainConfig
from engine.train.packing import IGNORE, PackedBatch
from engine.train.watchdog import OK, Verdict

if TYPE_CHECKING:
    from engine.train.team import Team


@dataclass(frozen=True)
class StepResult:
    loss: float  # mean loss per target token over the whole step
    grad_norm: float
    lr: float
    tokens: int  # real (non-padding) tokens processed
    target_tokens: int
    masked_fraction: float
    oom_splits: int = 0  # times this step halved its micro-batches after running out of memory
    verdict: Verdict | None = None  # the watchdog's, when it held the update back
    overflow: bool = False  # fp16: the scaled gradients overflowed; no update, a lower loss scale


Judge = Callable[[float, float], Verdict]  # (loss, grad norm) -> the watchdog's verdict


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then the schedule's decay to ``min_lr_ratio`` (cosine or linear; a
    constant schedule stays at 1), then flat (the game never ends)."""
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.decay_steps - cfg.warmup_steps))
    shape = 1 - progress if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape


def pick_precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "fp16":  # asked for: the Trainer scales the loss (GradScaler)
        if not has_fp16(device):
            raise SettingRefused(
                "precision fp16 is for GPUs without bf16 units (a T4, a V100); this CPU would "
                "emulate it, ~40× slower than fp32: `realm config set train.precision auto`"
            )
        return torch.float16
    bf16_ok = has_bf16(device)
    if cfg.precision == "bf16" and not bf16_ok:
        raise SettingRefused(
            "precision bf16 needs a GPU that supports bfloat16 or a CPU with bfloat16 units "
            "(AVX512_BF16 or AMX); this one would emulate it, slower than fp32: "
            "`realm config set train.precision auto`"
        )
    return torch.bfloat16 if bf16_ok else None


def packed_logits(
    model: Any, input_ids: torch.Tensor, position_ids: torch.Tensor, row_tokens: tuple[int, ...] = ()
) -> torch.Tensor:
    """Forward a packed batch. ``use_cache=False`` matters: with a KV cache present,
    transformers skips deriving the block-diagonal mask from the position resets, and
    packed examples would attend to each other (tests/engine/test_packing.py catches it)."""
    extra = attention_kwargs(model, position_ids, row_tokens)
    return model(input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra).logits


def attention_kwargs(model: Any, position_ids: torch.Tensor, row_tokens: tuple[int, ...]) -> dict[str, Any]:
    """The segment plan for a model on ``sdpa_segments`` (engine/model/segments.py): each
    packed example attended on its own instead of a masked row, where that saves enough
    work to pay. Built on the host from the positions (on a GPU that reads them back once
    per micro-batch)."""
    plan = plan_if_it_pays(position_ids, row_tokens) if use_segments(model) else None
    return {"segments": plan.to(position_ids.device)} if plan is not None else {}


CE_CHUNK = 1024  # target tokens per output-layer chunk
# The target rows are padded (with ignored targets) to a multiple of this, so the output
# layer sees a handful of shapes, not a new one every step: under bf16 autocast on a CPU,
# oneDNN builds and caches a kernel per matmul shape, and a new row count every step grew
# the process by ~5 MB a step (docs/benchmarks.md).
TARGET_ROW_MULTIPLE = 64


def _split_head(model: Any) -> tuple[Any, Any] | None:
    """(the transformer body, the output layer), peft-wrapped or not; None when the
    model does not expose them (the plain logits path is used then)."""
    base = unwrapped(model)
    get_decoder = getattr(base, "get_decoder", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    decoder = get_decoder() if callable(get_decoder) else None
    if decoder is None or head is None or decoder is base:
        return None
    return decoder, head


def compiled_body(model: Any) -> Any:
    """The transformer body through torch.compile, for training steps only: a wrapper, so
    the module itself (and generate() in evals and the Oracle, whose shapes change every
    token) stays eager. The chunked loss stays eager too: its shapes follow the answers."""
    parts = _split_head(model)
    if parts is None:
        return None
    return torch.compile(parts[0])


def _chunk_loss(head: Any, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, ignore_index=IGNORE, reduction="sum")


def token_loss_sum(model: Any, batch: PackedBatch, body: Any = None) -> torch.Tensor:
    """Summed cross-entropy over the batch's target tokens (targets are pre-shifted).

    Memory-lean: the output layer runs only on positions that have a target (prompts and
    padding have none), CE_CHUNK of them at a time, each chunk recomputed in the backward
    pass, so the rows × seq_len × vocab logits (11 GiB for Qwen3's 151k vocabulary at
    8 × 1024) are never held at once. Equal to the plain loss (tests/engine/test_packing.py).
    ``body``: the model's transformer body to call instead (a torch.compile'd one)."""
    parts = _split_head(model)
    if parts is None:
        logits = packed_logits(model, batch.input_ids, batch.position_ids, batch.row_tokens)
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)).float(),
            batch.targets.view(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
    decoder, head = parts
    extra = attention_kwargs(model, batch.position_ids, batch.row_tokens)
    out = (decoder if body is None else body)(
        input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **extra
    )
    hidden = out.last_hidden_state
    targets = batch.targets.view(-1)
    keep = targets != IGNORE
    hidden = hidden.reshape(-1, hidden.size(-1))[keep]
    targets = targets[keep]
    extra_rows = -targets.numel() % TARGET_ROW_MULTIPLE
    if extra_rows:
        hidden = F.pad(hidden, (0, 0, 0, extra_rows))
        targets = F.pad(targets, (0, extra_rows), value=IGNORE)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), CE_CHUNK):
        h, t = hidden[start : start + CE_CHUNK], targets[start : start + CE_CHUNK]
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_loss, head, h, t, use_reentrant=False)
        else:
            total = total + _chunk_loss(head, h, t)
    return total


class Trainer:
    def __init__(
        self,
        model: Any,
        cfg: TrainConfig,
        device: torch.device,
        first_step: int = 0,
        team: Team | None = None,
    ) -> None:
        """``first_step``: where this schedule begins (a campaign phase starts its own
        warmup and decay there; the step count itself runs on). ``team``: the ranks of a
        multi-GPU run (engine/train/team.py); each step then trains this rank's share."""
        self.team = team
        self.sharded = team is not None and team.shard
        # Sharded (--fsdp), this trains a sharded twin of ``model``; rank 0's ``model``
        # stays whole for evals, the Oracle and loot, and gets each step's new weights.
        self.plain = None if self.sharded and team is not None and not team.leader else model
        if self.sharded and team is not None:
            from engine.train.shard import sharded_twin

            model = sharded_twin(model, team.mesh, keep_original=team.leader)
        self.model = model
        self.pending_optimizer: dict[str, Any] | None = None  # sharded: loaded with the weights
        self.cfg = cfg
        self.device = device
        self.first_step = first_step
        self.lr_scale = 1.0
        self.autocast_dtype = pick_precision(cfg, device)
        # fp16 gradients underflow unless the loss is scaled up first; the scale is found as
        # training goes (halved on an overflow, that step skipped; doubled after 2,000 clean
        # steps), as HF Trainer's fp16 does. bf16 has fp32's range and needs none.
        self.scaler = self._fresh_scaler() if self.autocast_dtype == torch.float16 else None
        decay: list[tuple[str, torch.nn.Parameter]] = []
        no_decay: list[tuple[str, torch.nn.Parameter]] = []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            # Norms and biases are not weight-decayed (the usual GPT recipe).
            (no_decay if param.ndim < 2 or "norm" in name else decay).append((name, param))
        # The parameters in the optimizer's order: the numbers of its state_dict
        self.param_names = [name for name, _ in decay + no_decay]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [param for _, param in decay], "weight_decay": cfg.weight_decay},
                {"params": [param for _, param in no_decay], "weight_decay": 0.0},
            ],
            lr=cfg.lr,
            betas=(0.9, 0.95),
            # One fused kernel for every parameter: the optimizer phase 10.5 → 4.7 ms of a 0.5 s
            # step on this CPU (docs/benchmarks.md, engine/bench/profile.py); the default on a
            # CPU is a Python loop over the parameters.
            fused=device.type in ("cpu", "cuda"),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: self.factor(step))
        self.body = compiled_body(model) if cfg.compile and not self.sharded else None

    def _fresh_scaler(self, state: dict[str, Any] | None = None) -> torch.amp.GradScaler:
        scaler = torch.amp.GradScaler(self.device.type)
        if state:
            scaler.load_state_dict(state)
        return scaler

    def loss_scale(self) -> float:
        """fp16's loss scale now (0 without one)."""
        return self.scaler.get_scale() if self.scaler is not None else 0.0

    def factor(self, step: int) -> float:
        return lr_factor(max(0, step - self.first_step), self.cfg)

    def autocast(self) -> Any:
        """The forward pass's precision context (train.precision): bf16 autocast or none."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def set_lr_scale(self, scale: float) -> None:
        """Scale the whole schedule (the watchdog's rollbacks): after a state load too."""
        self.lr_scale = scale
        self.scheduler.base_lrs = [self.cfg.lr * scale for _ in self.optimizer.param_groups]
        now = self.factor(self.scheduler.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["initial_lr"] = base
            group["lr"] = base * now

    def step(self, micro_batches: list[PackedBatch], judge: Judge | None = None) -> StepResult:
        """One optimizer step. Out of memory does not end the run: the micro-batches are
        halved (the same rows, so the same effective batch and gradient) and the step is
        tried again; the caller keeps the smaller size for the steps after (one process
        only: with several ranks the others would wait in a collective that never comes)."""
        if self.team is not None:
            return self._step(micro_batches, judge)
        splits = 0
        while True:
            try:
                result = self._step(micro_batches, judge)
                return replace(result, oom_splits=splits)
            except torch.OutOfMemoryError:
                pass  # free memory below, outside the handler: its traceback pins the activations
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:  # same scale, but forget an unscale_ the failed try made
                self.scaler = self._fresh_scaler(self.scaler.state_dict())
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if all(b.input_ids.size(0) == 1 for b in micro_batches):
                raise MemoryError(
                    "out of memory with one packed row per micro-batch: lower train.seq_len, "
                    "or train with --mode lora / qlora, or turn gradient checkpointing on"
                )
            micro_batches = [half for b in micro_batches for half in b.split()]
            splits += 1

    def _step(self, micro_batches: list[PackedBatch], judge: Judge | None) -> StepResult:
        self.model.train()
        # Normalise by the step's target tokens, not per micro-batch, so accumulation
        # gives the same gradient as one big batch whatever the split.
        total_targets = sum(b.target_tokens for b in micro_batches)
        if total_targets == 0:
            raise ValueError("a step with no target tokens (nothing to learn from)")
        # Summed on the device: the host waits for the GPU once a step (loss and grad norm
        # read together below), not once per micro-batch.
        losses = torch.zeros((), dtype=torch.float64, device=self.device)  # as exact as a Python float
        # FSDP averages the ranks' gradients; scaled by the ranks, the average is their sum.
        ranks = self.team.world if self.sharded and self.team else 1
        for batch, weight in (
            self.team.share(micro_batches) if self.team else ((b, 1.0) for b in micro_batches)
        ):
            batch = batch.to(self.device)
            with self.autocast():
                loss = self._loss(batch)
            scaled = loss * weight / total_targets * ranks
            (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()
            losses += loss.detach().double() * weight
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.team is not None:  # every rank's gradients, summed: the whole batch's
            losses.fill_(self.team.sum_grads(params, float(losses)))
        if self.scaler is not None:  # the true gradients, for the norm, the clip and AdamW
            self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip or math.inf)
        if self.sharded:  # each rank holds part of the norm (a DTensor)
            norm = norm.full_tensor()  # type: ignore[attr-defined]
        loss_sum, grad_norm = torch.stack([losses, norm.double().to(losses.device)]).tolist()
        lr = float(self.scheduler.get_last_lr()[0])
        # An fp16 overflow is the loss scale being found, not a sick run: no update, and the
        # watchdog does not judge it (its gradient norm is inf). Every rank sees the same. A
        # loss that is itself not a number is the watchdog's, as in any precision.
        overflow = self.scaler is not None and not math.isfinite(grad_norm) and math.isfinite(loss_sum)
        verdict = judge(loss_sum / total_targets, grad_norm) if judge is not None and not overflow else None
        apply = (verdict is None or verdict.action == OK) and not overflow
        if self.team is not None:
            apply = self.team.agree(apply)  # rank 0's watchdog decides for every rank
        if apply:
            self.optimizer.step()
            verdict = None
            if self.sharded:  # rank 0's whole copy gets the new weights
                from engine.train.shard import publish

                publish(self.model, self.plain)
        if self.scaler is not None:
            self.scaler.update()  # lower after an overflow, higher after a long clean run
        # A held-back step still counts: the schedule follows the step number. (torch warns
        # when the first step was held back, an fp16 overflow or the watchdog: meant here.)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "Detected call of `lr_scheduler.step\\(\\)` before", UserWarning
            )
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        cells = sum(b.targets.numel() for b in micro_batches)
        return StepResult(
            loss=loss_sum / total_targets,
            grad_norm=grad_norm,
            lr=lr,
            tokens=sum(b.real_tokens for b in micro_batches),
            target_tokens=total_targets,
            masked_fraction=1.0 - total_targets / cells,
            verdict=verdict,
            overflow=overflow,
        )

    def _loss(self, batch: PackedBatch) -> torch.Tensor:
        if self.sharded:  # through the root module, so FSDP gathers what the loss reads
            return self.model(batch.input_ids, batch.position_ids, batch.targets, batch.row_tokens)
        return token_loss_sum(self.model, batch, self.body)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer and schedule, whole. Sharded, rank 0 has every rank gather the
        optimizer state with it (the others call this when told "state")."""
        if not self.sharded:
            state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
            if self.scaler is not None:  # the loss scale found so far: a resume needs no new search
                state["scaler"] = self.scaler.state_dict()
            return state
        from engine.train.shard import full_optimizer_state

        if self.team is not None and self.team.leader:
            self.team.tell({"op": "state"})
        optimizer = full_optimizer_state(self.model, self.optimizer, self.param_names)
        return {"optimizer": optimizer, "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.sharded:  # the shards take it from rank 0 with the weights (Team.copy_state)
            self.pending_optimizer = state["optimizer"]
            self.scheduler.load_state_dict(state["scheduler"])
            self.set_lr_scale(self.lr_scale)
            return
        fused = [group.get("fused") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, was in zip(self.optimizer.param_groups, fused, strict=True):
            group["fused"] = was  # loot saved before fused AdamW keeps this run's kernel
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler = self._fresh_scaler(state["scaler"])
        # The saved base lr was that run's: this schedule's (a new campaign phase) wins.
        self.set_lr_scale(self.lr_scale)
