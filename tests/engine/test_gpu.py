"""The GPU paths, run for real where a CUDA GPU is present (skipped elsewhere): a QLoRA
hero trains its adapters on a 4-bit base, bf16 autocast is chosen, NVML sees the GPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.protocol.config import LoraConfig
from tests.conftest import make_hero, run_worker

pytestmark = pytest.mark.gpu


def test_qlora_trains_adapters_on_a_4_bit_base(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    config = replace(config, mode="qlora", lora=LoraConfig(rank=4, alpha=8, dropout=0.0))
    save.config.write_text(config.to_json())
    worker = run_worker(save, config, 4)
    model = worker.hero.model
    assert worker.hero.device.type == "cuda"
    assert any("4bit" in type(m).__name__ for m in model.modules())  # bitsandbytes Linear4bit
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert worker.progress.step == 4 and worker.progress.smoothed_loss is not None


def test_bf16_autocast_and_nvml_on_a_gpu(tmp_path: Path, hatchling_dir: Path) -> None:
    import torch

    from engine.model.gpu import GpuProbe
    from engine.train.trainer import pick_precision

    _save, config = make_hero(tmp_path, hatchling_dir)
    if torch.cuda.is_bf16_supported():
        assert pick_precision(config.train, torch.device("cuda")) == torch.bfloat16
    stats = GpuProbe().read()
    assert stats.available and stats.memory_total and stats.memory_total > 0
