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


def fake_nvml(
    broken: set[str], name: bytes = b"NVIDIA H100 80GB HBM3", capability: tuple[int, int] = (9, 0)
) -> Any:
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
        nvmlDeviceGetName=call("name", name),
        nvmlDeviceGetCudaComputeCapability=call("capability", capability),
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


H100 = vram.Numerics.of("auto", gpu=True, bf16_units=True)


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
    full, lora, qlora = (vram.estimate(shape, m, (8, 1024), H100) for m in ("full", "lora", "qlora"))
    assert full.optimizer == 8 * shape.params and full.gradients == 4 * shape.params
    assert lora.trainable < shape.params / 20
    assert full.total > lora.total > qlora.total
    # 4-bit blocks, but Qwen3-0.6B's 156M-parameter embedding stays fp32 (peft): 0.72 of LoRA's bf16 base
    assert 0.6 * lora.weights < qlora.weights < 0.8 * lora.weights
    checkpointed = vram.estimate(shape, "full", (8, 1024), H100, checkpointing=True)
    assert checkpointed.activations < full.activations / 5
    line = vram.describe(full, 80 * vram.GIB, "VRAM")
    assert line.startswith("est. ") and "of 80.0 GiB VRAM" in line


def test_estimate_knows_the_lean_loss_chunk() -> None:
    assert vram.CE_CHUNK == trainer_mod.CE_CHUNK
    shape = qwen3_06b()
    short = vram.estimate(shape, "full", (1, 512), H100)
    long = vram.estimate(shape, "full", (8, 4096), H100)
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
    line, over, checkpointing = vram.plan_for(shape, config, (1, 1024), capacity, bf16_units=True)
    assert over and checkpointing
    line, over, checkpointing = vram.plan_for(shape, config, (1, 1024), capacity, bf16_units=True, shards=8)
    assert not over and not checkpointing and "rank 0 of 8, sharded" in line
    alone = vram.estimate(shape, "full", (1, 1024), H100)
    share = vram.sharded(alone, shape, 8)
    assert share.optimizer == alone.optimizer / 8
    assert alone.weights * 1.125 < share.weights < alone.weights * 1.2  # the copy + 1/8 + a layer


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16", "fp16"])
@pytest.mark.parametrize("bf16_units", [True, False])
def test_the_estimates_activations_follow_the_precision_the_trainer_picks(
    monkeypatch: pytest.MonkeyPatch, precision: str, bf16_units: bool
) -> None:
    """16-bit activations exactly where the Trainer autocasts (any GPU, with or without
    bf16 units): fp16 on a T4 is 16-bit activations, auto on it is fp32."""
    import torch

    from engine.protocol.config import SettingRefused, TrainConfig

    monkeypatch.setattr(trainer_mod, "has_bf16", lambda device: bf16_units)
    monkeypatch.setattr(trainer_mod, "has_fp16", lambda device: True)
    try:
        autocast = trainer_mod.pick_precision(TrainConfig(precision=precision), torch.device("cuda"))
    except SettingRefused:
        return  # bf16 asked for where it would be emulated: the run never starts
    numerics = vram.Numerics.of(precision, gpu=True, bf16_units=bf16_units)
    assert numerics.half_activations == (autocast is not None)
    assert numerics.half_base == bf16_units  # LoRA's frozen base: bf16 by the hardware (hero.py)


def test_fp16_on_a_t4_plans_16_bit_activations_over_an_fp32_base() -> None:
    """A 16 GB card without bf16 units: in fp32 the activations are twice fp16's, so
    `gradient_checkpointing: auto` turns on there and not under fp16; LoRA's base stays
    fp32 either way (it is bf16 only where the GPU has the units)."""
    shape = qwen3_06b()
    t4_fp16 = vram.Numerics.of("fp16", gpu=True, bf16_units=False)
    t4_fp32 = vram.Numerics.of("auto", gpu=True, bf16_units=False)
    half = vram.estimate(shape, "lora", (8, 1024), t4_fp16)
    full_width = vram.estimate(shape, "lora", (8, 1024), t4_fp32)
    assert full_width.activations == 2 * half.activations
    assert half.weights == full_width.weights > vram.estimate(shape, "lora", (8, 1024), H100).weights
    capacity = 16 * vram.GIB
    config = HeroConfig.from_dict({"name": "t4", "mode": "lora", "train": {"precision": "fp16"}})
    _, over, checkpointing = vram.plan_for(shape, config, (8, 1024), capacity, bf16_units=False)
    assert not over and not checkpointing
    config = HeroConfig.from_dict({"name": "t4", "mode": "lora", "train": {"precision": "auto"}})
    _, over, checkpointing = vram.plan_for(shape, config, (8, 1024), capacity, bf16_units=False)
    assert not over and checkpointing


def test_qloras_unquantised_layers_are_counted_as_peft_leaves_them(hatchling_dir: Any) -> None:
    """prepare_model_for_kbit_training (engine/model/hero.py) casts every 16-bit weight it
    finds that is not 4-bit to fp32: the embeddings and output layer end up 4 bytes each."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, dtype=torch.bfloat16)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    assert model.get_input_embeddings().weight.element_size() == vram.QLORA_KEPT_BYTES


def test_the_offline_estimate_reads_bf16_units_from_nvml_or_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The start screen's estimate has no torch: a T4 (compute capability 7.5) has no bf16
    units, an A100 or H100 has; without a GPU the CPU's flags say it, as torch reads them."""
    import torch

    from engine.model import estimate
    from engine.model.hero import has_bf16

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(set(), b"Tesla T4", (7, 5)))
    assert estimate.device_facts() == (80 * 2**30, "Tesla T4", False)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(set(), b"NVIDIA A100-SXM4-80GB", (8, 0)))
    assert estimate.device_facts()[2]
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert estimate.device_facts() == (None, "cpu", has_bf16(torch.device("cpu")))
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n", encoding="utf-8")
    assert estimate.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n", encoding="utf-8")
    assert not estimate.cpu_has_bf16(cpuinfo)
    assert not estimate.cpu_has_bf16(tmp_path / "missing")


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


def test_a_multimodal_config_is_read_by_its_text_model() -> None:
    """Gemma 3 (4B and up) keeps hidden_size and its context in text_config: the memory
    plan and the Oracle's context read them there (they failed on the wrapper)."""
    from transformers import Gemma3Config

    from engine.oracle.chat import context_of

    wrapper = Gemma3Config()
    assert not hasattr(wrapper, "hidden_size")
    assert vram.ModelShape.from_config(wrapper) == vram.ModelShape.from_config(wrapper.text_config)
    assert context_of(wrapper) == wrapper.text_config.max_position_embeddings
