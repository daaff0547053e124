"""Training on several GPUs (or processes) with PyTorch's own distributed engine.

`realm train --gpus N` starts N ranks with torchrun. Rank 0 is the engine the game talks
to (the save folder's single writer, the socket, loot, evals, quests); the other ranks only
train. Each step, rank 0 packs the whole global batch as one process would and sends it
(``tell``); every rank computes the gradients of its share of the micro-batches (or of
their rows), the ranks sum them (``sum_grads``: one all-reduce, as DDP does), and every
rank clips and steps the same optimizer on the same gradients. The gradient is the one a
single process gets for the same global batch (normalised by the step's target tokens, not
averaged per rank), so the losses match a single-process run up to float rounding.

Rank 0 also sends its weights and optimizer state (``copy_state``) whenever it (re)starts:
a resume, a watchdog rollback, a rewind, a new campaign phase. A rank that dies ends the
collective calls of the others with an error, so the whole run stops and resumes from the
last loot like any crash.

With ``--fsdp`` (``shard``) the ranks keep only their shard of the training state
(engine/train/shard.py): FSDP reduces the gradients itself, every rank runs the same
number of forward passes (a rank without rows in a micro-batch runs one at weight 0), and
rank 0 gathers the optimizer state when it saves loot. A rank that dies then takes its
shard with it: no stop loot can be saved, and the next start resumes from the last loot.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch

from engine.train.packing import PackedBatch

# A pause, an eval or the Oracle on rank 0 keeps the other ranks waiting: for days if need be.
WAIT = timedelta(days=30)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_of_process() -> int:
    return int(os.environ.get("RANK", "0"))


class Team:
    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank = rank
        self.world = world
        self.device = device
        self.mesh: Any = None  # the ranks as a DeviceMesh, for FSDP (from_env, sharded runs)
        self.shard = False  # --fsdp (from_env; rank 0 checks it again in its "sync" order)

    @classmethod
    def from_env(cls, shard: bool = False) -> Team | None:
        """The team torchrun set up in the environment; None for a single process.
        ``shard`` (--fsdp, which every rank's command line carries): a DeviceMesh too."""
        if world_size() <= 1:
            return None
        import torch.distributed as dist

        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device, backend = torch.device("cuda", local), "nccl"
        else:
            device, backend = torch.device("cpu"), "gloo"
        dist.init_process_group(backend, timeout=WAIT)
        team = cls(dist.get_rank(), dist.get_world_size(), device)
        if shard:
            from torch.distributed.device_mesh import init_device_mesh

            # Made here, where every rank is, in case making it talks to the others.
            team.mesh = init_device_mesh(device.type, (team.world,))
            team.shard = True
        return team

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def tell(self, order: dict[str, Any] | None) -> dict[str, Any]:
        """Rank 0's order (``order`` on rank 0, ignored elsewhere), as every rank gets it."""
        import torch.distributed as dist

        box = [order if self.leader else None]
        dist.broadcast_object_list(box, src=0)
        received: dict[str, Any] = box[0]  # type: ignore[assignment]
        return received

    def share(self, micro: list[PackedBatch]) -> list[tuple[PackedBatch, float]]:
        """This rank's part of the global batch, each with its weight in the loss: whole
        micro-batches when they divide among the ranks, else rows rank, rank + world, … of
        each micro-batch. Rows need not divide evenly (3 rows, 2 ranks: 2 + 1): the loss is
        normalised by the whole step's target tokens, so the summed gradient is the
        one-process gradient either way; an uneven share only leaves a rank idle part of
        the step. Sharded, a rank never sits out (each forward pass gathers weights from
        every rank): it runs rank 0's rows at weight 0 instead."""
        if len(micro) % self.world == 0:
            return [(batch, 1.0) for batch in micro[self.rank :: self.world]]
        shares: list[tuple[PackedBatch, float]] = []
        for batch in micro:
            mine = rows_of(batch, self.rank, self.world)
            if mine is not None:
                shares.append((mine, 1.0))
            elif self.shard:
                shares.append((rows_of(batch, 0, self.world) or batch, 0.0))
        return shares

    def describe_split(self, micro_batch: int, grad_accum: int) -> str:
        """How a step's rows go round the ranks, for the log."""
        sharded = "the training state sharded (FSDP), " if self.shard else ""
        return sharded + self._rows_split(micro_batch, grad_accum)

    def _rows_split(self, micro_batch: int, grad_accum: int) -> str:
        if grad_accum % self.world == 0:
            return f"{grad_accum // self.world} micro-batch(es) of {micro_batch} rows per rank"
        if micro_batch % self.world == 0:
            return f"{micro_batch // self.world} of each micro-batch's {micro_batch} rows per rank"
        return (
            f"each micro-batch's {micro_batch} rows shared unevenly by {self.world} ranks (the same "
            f"losses; a micro-batch of a multiple of {self.world} rows keeps every rank busy)"
        )

    def sum_grads(self, params: list[torch.nn.Parameter], loss_sum: float) -> float:
        """Every rank's gradients summed into each rank's (one flat all-reduce; sharded,
        FSDP has reduced them already), and the summed loss returned."""
        import torch.distributed as dist

        if self.shard:
            return self.sum_loss(loss_sum)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for param, grad in zip(params, grads, strict=True):
            n = grad.numel()
            param.grad = flat[offset : offset + n].view_as(param).to(grad.dtype)
            offset += n
        return self.sum_loss(loss_sum)

    def sum_loss(self, loss_sum: float) -> float:
        import torch.distributed as dist

        total = torch.tensor([loss_sum], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total.item())

    def agree(self, apply: bool) -> bool:
        """Rank 0's decision (the watchdog's) on whether this step's update is applied."""
        return bool(self.tell({"apply": apply} if self.leader else None)["apply"])

    def copy_state(self, model: Any, trainer: Any) -> None:
        """Rank 0's weights and optimizer + schedule state into every rank."""
        import torch.distributed as dist

        if self.shard:
            self._copy_into_shards(model, trainer)
            return
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)
        state = self.tell(
            {"trainer": trainer.state_dict(), "lr_scale": trainer.lr_scale} if self.leader else None
        )
        if not self.leader:
            trainer.load_state_dict(state["trainer"])
            trainer.set_lr_scale(state["lr_scale"])

    def _copy_into_shards(self, model: Any, trainer: Any) -> None:
        from engine.train.shard import load_from_leader

        pending = trainer.pending_optimizer if self.leader else None
        told = self.tell(
            {
                "scheduler": trainer.scheduler.state_dict(),
                "lr_scale": trainer.lr_scale,
                "optimizer": bool(pending),
            }
            if self.leader
            else None
        )
        plain = model if self.leader else None
        load_from_leader(
            trainer.model, trainer.optimizer, plain, pending, trainer.param_names, told["optimizer"]
        )
        trainer.pending_optimizer = None
        if not self.leader:
            trainer.scheduler.load_state_dict(told["scheduler"])
            trainer.set_lr_scale(told["lr_scale"])

    def part(self) -> None:
        """Every rank waits here after rank 0's "stop", before any leaves."""
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        """The process group torn down, after the mesh and everything sharded on it (the
        caller lets go of the sharded model first): with those still alive, a process
        aborted at exit ("terminate called without an active exception") in about one
        sharded run in four on gloo."""
        import gc

        import torch.distributed as dist

        self.mesh = None
        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()


def rows_of(batch: PackedBatch, rank: int, world: int) -> PackedBatch | None:
    """Rows rank, rank + world, … of a packed batch (its share when micro-batches do not
    divide among the ranks); None when the batch has fewer rows than that."""
    rows = batch.input_ids.size(0)
    if rank >= rows:
        return None
    pick = slice(rank, rows, world)
    row_tokens = batch.row_tokens[pick] if batch.row_tokens else ()
    return PackedBatch(
        batch.input_ids[pick].contiguous(),
        batch.position_ids[pick].contiguous(),
        batch.targets[pick].contiguous(),
        batch.examples,  # not used for the gradient; kept for the record
        sum(row_tokens) if row_tokens else batch.real_tokens * len(range(rows)[pick]) // rows,
        row_tokens,
    )
