"""Loading the hero: the hatchling (created on first use) or a local Hugging Face folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import HeroConfig
from engine.savedir import SaveDir

log = logging.getLogger("engine.hero")


class HeroLoadError(Exception):
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


def base_folder(config: HeroConfig, save: SaveDir) -> Path:
    """The model folder training starts from when there is no loot yet."""
    if not config.model:
        if not (save.base_model / "config.json").exists():
            from engine.hatchling import hatch

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


def load_hero(folder: Path, device: torch.device, label: str) -> LoadedHero:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # bars would garble engine.log and `realm train`
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    except (OSError, ValueError) as exc:
        raise HeroLoadError(f"cannot load a causal LM from {folder}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device)  # type: ignore[arg-type]  # transformers' stub confuses mypy
    return LoadedHero(model, tokenizer, device, label)
