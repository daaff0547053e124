"""The memory estimate for a hero that does not exist yet (the start screen's "new hero"),
from the model folder's config.json alone: no torch, no weights loaded.

    python -m engine.model.estimate [--model DIR] [--mode full|lora|qlora]

prints one JSON line: {"ok": true, "line": "est. 2.9 GiB RAM (…)", "over": false,
"params": N, "device": "cpu"} or {"ok": false, "message": "why"}. The batch is the
automatic one (about TOKENS_PER_MICRO_BATCH tokens a pass, engine/train/fit.py); the GPU
is the one NVML sees, with bf16 units when its compute capability is 8.0 or more (as
engine/model/hero.py's has_bf16 decides once torch is loaded); without one, the CPU's flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.model.memory import ModelShape, plan_for
from engine.protocol.config import MODES, HeroConfig

AUTO_TOKENS = 2048  # engine/train/fit.py TOKENS_PER_MICRO_BATCH (that module loads the skills)
AUTO_SEQ_LEN = 256  # any split of AUTO_TOKENS gives the same estimate


def hatchling_config() -> SimpleNamespace:
    from engine.model.hatchling_spec import EXTRA_TOKENS, SPECIAL_TOKENS, HatchlingSpec

    spec = HatchlingSpec()
    return SimpleNamespace(
        model_type="qwen3",
        vocab_size=spec.vocab_size + len(SPECIAL_TOKENS) + len(EXTRA_TOKENS),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        head_dim=spec.hidden_size // spec.heads,
        tie_word_embeddings=True,
        max_position_embeddings=spec.max_positions,
    )


def folder_config(folder: Path) -> SimpleNamespace:
    data: Any = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    data = data.get("text_config", data) if isinstance(data, dict) else {}  # multimodal wrappers
    missing = [
        k for k in ("hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads") if k not in data
    ]
    if missing:
        raise ValueError(f"config.json has no {', '.join(missing)}")
    return SimpleNamespace(**data)


BF16_CAPABILITY = (8, 0)  # Ampere on: bf16 units (torch.cuda.is_bf16_supported without emulation)
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # what torch.cpu._is_avx512_bf16/amx_tile_supported read


def device_facts() -> tuple[int | None, str, bool]:
    """(the first GPU's memory in bytes, its name, whether it has bf16 units); without a
    GPU (None, "cpu", whether the CPU has them)."""
    from engine.model.gpu import GpuProbe

    probe = GpuProbe()
    stats = probe.read()
    if not stats.available or not stats.memory_total:
        return None, "cpu", cpu_has_bf16()
    capability = probe.compute_capability()
    # NVML silent on it: assume a current GPU (every one since 2020 has the units)
    units = capability is None or capability >= BF16_CAPABILITY
    return int(stats.memory_total), stats.name or "GPU", units


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 units, from its flags (Linux); False elsewhere."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def new_hero_estimate(model: str | None, mode: str) -> dict[str, Any]:
    config = HeroConfig(name="new", mode=mode)
    shape = ModelShape.from_config(folder_config(Path(model)) if model else hatchling_config())
    capacity, device, bf16_units = device_facts()
    rows_shape = (AUTO_TOKENS // AUTO_SEQ_LEN, AUTO_SEQ_LEN)
    line, over, _ = plan_for(shape, config, rows_shape, capacity, bf16_units)
    return {"ok": True, "line": line, "over": over, "params": shape.params, "device": device}


def model_folder_of(config: HeroConfig, base_model: Path) -> Path:
    """Where a hero's model is: its --model folder, else the save's own base."""
    return Path(config.model).expanduser() if config.model else base_model


def hero_estimate(config: HeroConfig, base_model: Path) -> str:
    """The plan line for an existing hero's config without loading it (offline `realm
    config set`): its model folder's shape, its batch (0 = the automatic one)."""
    folder = model_folder_of(config, base_model)
    shape = ModelShape.from_config(
        folder_config(folder) if (folder / "config.json").is_file() else hatchling_config()
    )
    capacity, _, bf16_units = device_facts()
    train = config.train
    if train.seq_len and train.micro_batch:
        rows_shape = (train.micro_batch, train.seq_len)
    elif train.seq_len:
        rows_shape = (max(1, AUTO_TOKENS // train.seq_len), train.seq_len)
    else:
        rows_shape = (train.micro_batch or AUTO_TOKENS // AUTO_SEQ_LEN, AUTO_SEQ_LEN)
    line, over, _ = plan_for(shape, config, rows_shape, capacity, bf16_units)
    return line + (" — OVER the GPU's memory" if over else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.model.estimate", description=__doc__)
    parser.add_argument("--model", help="a model folder (default: the hatchling)")
    parser.add_argument("--mode", choices=MODES, default="full")
    args = parser.parse_args(argv)
    try:
        answer = new_hero_estimate(args.model, args.mode)
    except (OSError, ValueError, TypeError) as exc:
        print(json.dumps({"ok": False, "message": f"no estimate: {exc}"}))
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
