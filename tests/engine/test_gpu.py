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
    if torch.cuda.get_device_capability()[0] >= 8:  # bf16 units (Ampere on)
        assert pick_precision(config.train, torch.device("cuda")) == torch.bfloat16
    stats = GpuProbe().read()
    assert stats.available and stats.memory_total and stats.memory_total > 0


def test_every_gpu_path_runs_and_a_real_oom_is_recovered() -> None:
    """`realm bench --gpu-paths` in this process on a Qwen3-0.6B-shaped model: full in fp32
    weights with bf16 autocast, lora on a bf16 base, qlora on NF4, flash-attention 2 where
    installed, NVML, and a micro-batch too big to fit that the Trainer splits."""
    import argparse

    from engine.bench.gpu_paths import run

    args = argparse.Namespace(rows=4, seq_len=512, steps=3, oom_rows=512, no_oom=False)
    result = run(args)
    modes = result["modes"]
    assert result["bf16_supported"] and modes["full"]["autocast"] == "bfloat16"
    assert modes["lora"]["weights_dtype"] == "bfloat16"
    assert modes["qlora"]["four_bit_layers"] > 0
    assert (
        modes["full_fp16"]["autocast"] == "float16" and modes["full_fp16"]["fp16_overflow_steps"] is not None
    )
    for mode, ran in modes.items():
        assert ran["losses_finite"], mode
        # The start screen's estimate must not promise a run fits when it does not.
        assert ran["peak_memory_mb"] / 1024 <= ran["estimate_gib"]["total"] * 1.5, (mode, ran)
        if result["flash_attn_2_installed"] and mode != "full":  # 16-bit weights
            assert ran["attention"] == "flash_attention_2", mode
    assert result["out_of_memory"]["recovered"], result["out_of_memory"]
    assert result["nvml_after_full"]["available"]


def test_rank_0s_copy_to_shard_takes_no_gpu_memory(hatchling_dir: Path) -> None:
    """--fsdp: the copy rank 0 shards is made in host memory (fully_shard then moves one
    unit at a time), so the GPU never holds the whole model twice."""
    import torch

    from engine.model.hero import load_hero
    from engine.train.shard import host_copy

    model = load_hero(hatchling_dir, torch.device("cuda"), "hatchling").model
    before = torch.cuda.memory_allocated()
    twin = host_copy(model)
    assert torch.cuda.memory_allocated() == before
    assert {p.device.type for p in twin.parameters()} == {"cpu"}
