"""The memory plan made before training starts: the estimate for this model, mode and
batch on this device (engine/vram.py), and gradient checkpointing when the config asks
for it, or ("auto") when the estimate without it would not fit the GPU."""

from __future__ import annotations

from typing import Any

import torch

from engine.config import HeroConfig
from engine.vram import Estimate, ModelShape, describe, estimate

AUTO_CHECKPOINTING_SHARE = 0.85  # of the GPU's memory


def plan_memory(model: Any, device: torch.device, config: HeroConfig) -> tuple[str, bool]:
    """(the plan as one line, whether even the chosen plan is over the GPU's memory).
    Turns gradient checkpointing on in ``model`` when the plan needs it."""
    shape = ModelShape.from_config(model.config)
    gpu = device.type == "cuda"
    bf16 = gpu and torch.cuda.is_bf16_supported() and config.train.precision != "fp32"
    capacity = torch.cuda.get_device_properties(device).total_memory if gpu else None

    def plan(checkpointing: bool) -> Estimate:
        train = config.train
        return estimate(
            shape, config.mode, train.micro_batch, train.seq_len, gpu, bf16, config.lora.rank, checkpointing
        )

    wanted = config.train.gradient_checkpointing
    checkpointing = wanted == "on" or (
        wanted == "auto" and capacity is not None and plan(False).total > AUTO_CHECKPOINTING_SHARE * capacity
    )
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    est = plan(checkpointing)
    line = describe(est, capacity, "VRAM" if gpu else "RAM")
    if checkpointing:
        line += " · gradient checkpointing on"
    return line, capacity is not None and est.total > capacity
