"""Loading the hero: the hatchling (created on first use) or a local Hugging Face folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.model.fused import fuse_rms_norms
from engine.model.segments import switch_to_segments
from engine.model.tokenizer import load_tokenizer
from engine.protocol.config import HeroConfig, LoraConfig, StartRefused
from engine.protocol.savedir import SaveDir

log = logging.getLogger("engine.model.hero")


class HeroLoadError(StartRefused):
    """The model folder cannot be used; the message says why and what to do."""


@dataclass
class LoadedHero:
    model: Any
    tokenizer: Any
    device: torch.device
    label: str

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def has_bf16(device: torch.device) -> bool:
    """Whether bfloat16 runs at full speed here: a CUDA GPU that supports it, or a CPU with
    bfloat16 units (AVX512_BF16 or AMX: AMD Zen 4 and later, Intel Cooper Lake and
    Sapphire Rapids and later), where bf16 matmuls run at about twice fp32's rate (434 vs
    202 GFLOP/s on this project's 2-core EPYC). Elsewhere autocast would emulate bf16,
    slower than fp32, so it is not used."""
    if device.type == "cuda":
        # Not torch's default answer: that counts emulation, and says yes on a T4 or V100
        # (no bf16 units: bf16 autocast there is slower than fp32, and flash-attention 2
        # does not run at all). Compute capability 8.0 (Ampere) and later have them.
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    # private but long-standing (torch/cpu/__init__.py); absent means "assume not"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def has_fp16(device: torch.device) -> bool:
    """Whether fp16 runs in hardware here: any CUDA GPU, or a CPU with AMX-FP16 units
    (Intel Granite Rapids). Elsewhere a CPU emulates it: a hatchling step took 8.5 s in fp16
    against 0.2 s in bf16 on this project's 2-core EPYC."""
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type != "cpu":
        return False
    return bool(getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)())


def base_folder(config: HeroConfig, save: SaveDir) -> Path:
    """The model folder training starts from when there is no loot yet."""
    if not config.model:
        if not (save.base_model / "config.json").exists():
            from engine.model.hatchling import hatch

            log.info("hatching a new hatchling in %s", save.base_model)
            hatch(save.base_model)
        return save.base_model
    folder = Path(config.model).expanduser()
    if not folder.is_dir():
        raise HeroLoadError(f"--model {config.model}: no such folder (a local HF model folder)")
    if not (folder / "config.json").exists():
        raise HeroLoadError(
            f"--model {config.model}: no config.json there; point at a folder saved with "
            "save_pretrained (e.g. a local copy of Qwen/Qwen3-0.6B)"
        )
    return folder


def check_mode(mode: str, device: torch.device) -> None:
    """Refuse what this machine cannot do, saying what to use instead."""
    if mode == "qlora" and device.type != "cuda":
        raise HeroLoadError(
            "--mode qlora needs a CUDA GPU: bitsandbytes' 4-bit NF4 weights are CUDA kernels. "
            "On this machine use --mode lora (the same adapters over a full-precision base) "
            "or --mode full."
        )


def pick_attention(device: torch.device, dtype: torch.dtype) -> str:
    """flash-attention 2 (varlen over the packed position resets) when it is installed
    and the weights are 16-bit on a GPU; otherwise SDPA, which load_hero then switches to
    ``sdpa_segments`` (each packed example attended on its own, engine/model/segments.py).
    Both paths are proved by tests/engine/test_packing.py and test_segments.py."""
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return "sdpa"
    from transformers.utils import is_flash_attn_2_available

    return "flash_attention_2" if is_flash_attn_2_available() else "sdpa"


def load_hero(
    folder: Path,
    device: torch.device,
    label: str,
    mode: str = "full",
    lora: LoraConfig | None = None,
    adapter: Path | None = None,
) -> LoadedHero:
    """The model and tokenizer. ``mode`` full trains every weight of ``folder`` (a loot
    folder when resuming). lora/qlora load ``folder`` as the frozen base and add LoRA
    adapters: fresh ones, or the ones saved in ``adapter`` (a loot folder) to resume."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    check_mode(mode, device)
    hf_logging.disable_progress_bar()  # bars would garble engine.log and `realm train`
    kwargs: dict[str, Any] = {"dtype": torch.float32, "attn_implementation": "sdpa"}
    if mode != "full" and device.type == "cuda" and has_bf16(device):
        kwargs["dtype"] = torch.bfloat16  # a frozen base needs no fp32 master copy
    # QLoRA's 4-bit weights are unpacked to this for each matmul: bf16 where the GPU has
    # bf16 units, else fp32 (slower, but a T4 emulating bf16 is slower still).
    compute = torch.bfloat16 if has_bf16(device) else torch.float32
    kwargs["attn_implementation"] = pick_attention(device, kwargs["dtype"] if mode != "qlora" else compute)
    if mode == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["device_map"] = {"": device.index or 0}
    try:
        tokenizer = load_tokenizer(adapter or folder)  # a base model gets a chat format here
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:  # missing or broken files, a config it cannot build
        raise HeroLoadError(f"cannot load a causal LM from {folder}: {exc}") from exc
    # SDPA heroes attend each packed example on its own in training (engine/model/segments.py);
    # a model that does not dispatch through transformers' attention interface keeps SDPA.
    switch_to_segments(model)
    # RMSNorm with a hand-written backward (engine/model/fused.py): fewer passes over memory
    fuse_rms_norms(model)
    if mode == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = model.to(device)  # type: ignore[arg-type]  # transformers' stub confuses mypy
    if mode != "full":
        model = add_adapters(model, lora or LoraConfig(), adapter)
    return LoadedHero(model, tokenizer, device, label)


def add_adapters(model: Any, lora: LoraConfig, adapter: Path | None) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    if adapter is not None:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    config = PeftLoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
