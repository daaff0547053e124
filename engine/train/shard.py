"""`realm train --gpus N --fsdp`: the training state sharded over the ranks (PyTorch FSDP2).

With plain `--gpus N` every rank holds the whole model, its gradients and AdamW's two
moments: 16 bytes a parameter in fp32, which is what stops a full fine-tune of a 7–8B
model on one 80 GB GPU. Sharded, each rank keeps 1/N of the weights, gradients and
optimizer state (``fully_shard`` on every decoder layer and on the whole), all-gathers a
layer's weights just before it runs and reduce-scatters its gradients just after.

Rank 0 still does everything else the game needs (evals, the Oracle, loot, the vault's
hashes) on an ordinary, unsharded copy of the model, ``plain``, so none of that code
knows about sharding. Rank 0 therefore needs room for the weights once more (fp32, 4 bytes
a parameter): the model's weights must fit one GPU, its training state need not. After
every applied step ``publish`` gathers the new weights into ``plain``: one all-gather of
the weights a step, the same traffic as the forward pass's.

Loot keeps the optimizer state whole (``full_optimizer_state``, in the numbered form
``torch.optim.Optimizer.state_dict`` writes), so loot from a sharded run resumes on one
process and the other way round.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from engine.train.packing import PackedBatch


class LossOf(torch.nn.Module):
    """The model with the step's loss as its forward: the root FSDP module. The loss reads
    the output layer's weight directly (chunked cross-entropy, engine/train/trainer.py), so
    the root's hook, which gathers the embeddings, final norm and output layer, must run
    around the whole loss, not only around the body."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        targets: torch.Tensor,
        row_tokens: tuple[int, ...],
    ) -> torch.Tensor:
        from engine.train.trainer import token_loss_sum

        batch = PackedBatch(input_ids, position_ids, targets, 0, 0, row_tokens)
        return token_loss_sum(self.lm, batch)


def sharded_twin(model: torch.nn.Module, mesh: Any, keep_original: bool) -> LossOf:
    """``model`` (or, to keep the original for rank 0's other work, a copy of it) sharded
    over ``mesh``: each layer its own FSDP unit, the rest (embeddings, norm, output layer:
    tied or not) in the root's. ``fully_shard`` makes no collective call, so ranks may do
    this at different times."""
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # FSDP2 is public from torch 2.6
        raise ValueError(
            f"--fsdp needs torch 2.6 or newer (FSDP2's fully_shard); this is torch {torch.__version__}"
        ) from None

    lm = host_copy(model) if keep_original else model
    twin = LossOf(lm)
    layers = set(getattr(lm, "_no_split_modules", None) or ())  # transformers' names for its blocks
    units = [module for module in lm.modules() if type(module).__name__ in layers]
    if not units:
        raise ValueError(f"--fsdp: {type(lm).__name__} names no decoder layers (_no_split_modules) to shard")
    for module in units:
        fully_shard(module, mesh=mesh)
    fully_shard(twin, mesh=mesh)
    return twin


@torch.no_grad()
def host_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose weights and buffers are in host memory (a tied weight stays
    one tensor): ``fully_shard`` then moves one unit at a time to the GPU and keeps its
    shard, so rank 0 never holds its whole copy twice on the GPU (a plain deepcopy did:
    64 GB for an 8B model for a moment)."""
    memo: dict[int, Any] = {}
    for param in model.parameters():
        memo[id(param)] = torch.nn.Parameter(param.to("cpu", copy=True), requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = buffer.to("cpu", copy=True)
    return copy.deepcopy(model, memo)


@torch.no_grad()
def publish(twin: torch.nn.Module, plain: torch.nn.Module | None) -> None:
    """The sharded weights gathered into ``plain`` (rank 0's copy; None on the other
    ranks, which only take part in the gathers)."""
    for name, param in twin.named_parameters():
        whole = param.full_tensor() if hasattr(param, "full_tensor") else param  # a DTensor
        if plain is not None:
            plain.get_parameter(name.removeprefix("lm.")).copy_(whole)


def numbered(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A whole optimizer state keyed by parameter name (torch.distributed.checkpoint's
    form) in the numbered form of ``Optimizer.state_dict`` (loot's form): the numbers are
    the parameters' places in the optimizer's groups, in order, which ``names`` lists."""
    number = {name: index for index, name in enumerate(names)}
    return {
        "state": {number[name]: value for name, value in state["state"].items()},
        "param_groups": [
            {**group, "params": [number[name] for name in group["params"]]} for group in state["param_groups"]
        ],
    }


def named(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``numbered``'s inverse."""
    return {
        "state": {names[int(index)]: value for index, value in state["state"].items()},
        "param_groups": [
            {**group, "params": [names[int(index)] for index in group["params"]]}
            for group in state["param_groups"]
        ],
    }


def full_optimizer_state(
    twin: torch.nn.Module, optimizer: torch.optim.Optimizer, names: list[str]
) -> dict[str, Any]:
    """The whole optimizer state on rank 0's CPU, numbered (every rank must call this;
    the others get an empty dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_optimizer_state_dict(twin, optimizer, options=options)
    return numbered(state, names) if state.get("state") else {}


def load_from_leader(
    twin: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    plain: torch.nn.Module | None,
    optimizer_state: dict[str, Any] | None,
    names: list[str],
    with_optimizer: bool,
) -> None:
    """Rank 0's weights (``plain``) and, ``with_optimizer`` (every rank must agree on it),
    its optimizer state (numbered) scattered into every rank's shards. Every rank calls
    this; only rank 0's ``plain`` and ``optimizer_state`` are read."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    weights = {f"lm.{key}": value for key, value in plain.state_dict().items()} if plain is not None else {}
    set_model_state_dict(twin, weights, options=options)
    if not with_optimizer:
        return
    fused = [group.get("fused") for group in optimizer.param_groups]
    state = named(optimizer_state, names) if optimizer_state else {}
    set_optimizer_state_dict(twin, optimizer, state, options=options)
    for group, was in zip(optimizer.param_groups, fused, strict=True):
        group["fused"] = was  # loot saved before fused AdamW keeps this run's kernel
