"""GPU telemetry without a GPU (guarded per metric), and the memory estimate."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from engine.model import gpu
from engine.model import memory as vram
from engine.protocol.config import HeroConfig
from engine.protocol.messages import GpuStats
from engine.train import trainer as trainer_mod


def test_no_nvml_library_means_no_gpu_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails, as in a bare container
    probe = gpu.GpuProbe()
    assert not probe.available
    assert probe.read() == GpuStats(available=False, reason="no GPU")


def test_nvml_without_a_driver_library_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """nvidia-ml-py installed, the driver's libnvidia-ml missing (a CPU box, a container
    without the driver): nvmlInit raises, and the probe says "no GPU"."""
    import pynvml

    def no_library() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    probe = gpu.GpuProbe()
    assert not probe.available
    assert probe.read() == GpuStats(available=False, reason="no GPU")


def test_a_gpu_index_past_the_count_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(broken=set()))
    assert gpu.GpuProbe(index=0).available
    assert not gpu.GpuProbe(index=1).available


def fake_nvml(broken: set[str]) -> Any:
    """A pynvml stand-in with one GPU; the named calls raise like an unsupported metric."""

    class NVMLError(Exception):
        pass

    def call(name: str, value: Any) -> Any:
        def fn(*_args: Any) -> Any:
            if name in broken:
                raise NVMLError(f"{name}: Not Supported")
            return value

        return fn

    module = types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: "handle",
        nvmlDeviceGetName=call("name", b"NVIDIA H100 80GB HBM3"),
        nvmlDeviceGetUtilizationRates=call("util", types.SimpleNamespace(gpu=87)),
        nvmlDeviceGetMemoryInfo=call("memory", types.SimpleNamespace(used=41 * 2**30, total=80 * 2**30)),
        nvmlDeviceGetTemperature=call("temp", 64),
        nvmlDeviceGetPowerUsage=call("power", 310_000),
        nvmlDeviceGetEnforcedPowerLimit=call("limit", 700_000),
    )
    return module


def test_every_metric_is_guarded_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(broken={"temp", "power"}))  # e.g. WSL
    stats = gpu.GpuProbe().read()
    assert stats.available and stats.name == "NVIDIA H100 80GB HBM3"
    assert stats.utilization == 87 and stats.memory_total == 80 * 2**30
    assert stats.temperature is None and stats.power_watts is None
    assert stats.power_limit_watts == 700
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(broken=set()))
    full = gpu.GpuProbe().read()
    assert full.temperature == 64 and full.power_watts == 310


def qwen3_06b() -> vram.ModelShape:
    from transformers import Qwen3Config

    config = Qwen3Config(
        hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
        head_dim=128, intermediate_size=3072, vocab_size=151936, tie_word_embeddings=True,
    )  # fmt: skip
    return vram.ModelShape.from_config(config)


def test_estimate_counts_qwen3_06b_and_orders_the_modes() -> None:
    shape = qwen3_06b()
    assert 590e6 < shape.params < 600e6  # Qwen3-0.6B: 0.6B with tied embeddings
    full, lora, qlora = (
        vram.estimate(shape, m, 8, 1024, gpu=True, bf16=True) for m in ("full", "lora", "qlora")
    )
    assert full.optimizer == 8 * shape.params and full.gradients == 4 * shape.params
    assert lora.trainable < shape.params / 20
    assert full.total > lora.total > qlora.total
    assert qlora.weights < lora.weights / 2
    checkpointed = vram.estimate(shape, "full", 8, 1024, gpu=True, bf16=True, checkpointing=True)
    assert checkpointed.activations < full.activations / 5
    line = vram.describe(full, 80 * vram.GIB, "VRAM")
    assert line.startswith("est. ") and "of 80.0 GiB VRAM" in line


def test_estimate_knows_the_lean_loss_chunk() -> None:
    assert vram.CE_CHUNK == trainer_mod.CE_CHUNK
    shape = qwen3_06b()
    short = vram.estimate(shape, "full", 1, 512, gpu=True, bf16=True)
    long = vram.estimate(shape, "full", 8, 4096, gpu=True, bf16=True)
    # logits are bounded by one chunk, not by rows x seq_len x vocab
    assert long.logits < 2 * 1024 * shape.vocab * 10
    assert short.logits <= long.logits


def test_a_sharded_plan_is_rank_0s_share_and_needs_no_checkpointing_where_one_gpu_would() -> None:
    """An 8B-shaped full fine-tune on 80 GiB GPUs: alone it is over (auto turns gradient
    checkpointing on and it is still over); sharded over 8 ranks, rank 0 holds its whole
    copy of the weights and 1/8 of the training state, and fits without checkpointing."""
    shape = vram.ModelShape(params=8_000_000_000, hidden=4096, layers=36, vocab=151_936, tied=False)
    config = HeroConfig(name="big")
    capacity = 80 * vram.GIB
    line, over, checkpointing = vram.plan_for(shape, config, (1, 1024), capacity, bf16=True)
    assert over and checkpointing
    line, over, checkpointing = vram.plan_for(shape, config, (1, 1024), capacity, bf16=True, shards=8)
    assert not over and not checkpointing and "rank 0 of 8, sharded" in line
    alone = vram.estimate(shape, "full", 1, 1024, gpu=True, bf16=True)
    share = vram.sharded(alone, shape, 8)
    assert share.optimizer == alone.optimizer / 8
    assert alone.weights * 1.125 < share.weights < alone.weights * 1.2  # the copy + 1/8 + a layer


def test_checkpointing_is_turned_on_and_read_back_without_a_deprecation_warning(hatchling_dir: Any) -> None:
    """By transformers' current name (v5: activation checkpointing), so neither the plan
    nor the "sync" order that carries it to the other ranks warns on every start."""
    import warnings

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hatchling_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert not vram.checkpoints_activations(model)
        vram.checkpoint_activations(model)
        assert vram.checkpoints_activations(model)
