"""What a local Hugging Face model folder needs before it can be a hero: checked by
`realm play/train --model` and by the engine, before a hero slot is made, so a bad
folder is refused with the missing file named (not with a traceback later).

`--model` also takes a Hub id (``Qwen/Qwen3-0.6B``) that is already in the local Hugging
Face cache (what `hf download` fills): it names that snapshot folder. Nothing is
downloaded here; an id not in the cache is refused saying how to fetch it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")

WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZERS = ("tokenizer.json", "tokenizer.model", "vocab.json")


def hub_cache() -> Path:
    """Where huggingface_hub keeps downloads (its own rule: HF_HUB_CACHE, HF_HOME/hub,
    XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("HF_HOME") or xdg / "huggingface").expanduser() / "hub"


def cached_snapshot(model_id: str) -> Path | None:
    """The cached snapshot of a Hub model (its main revision, else the newest one)."""
    repo = hub_cache() / f"models--{model_id.replace('/', '--')}"
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = [s for s in (repo / "snapshots").glob("*") if s.is_dir()]
    return max(snapshots, key=lambda s: s.stat().st_mtime) if snapshots else None


def is_hub_id(model: str) -> bool:
    return HUB_ID.fullmatch(model) is not None and not Path(model).expanduser().exists()


def resolve_model(model: str) -> Path:
    """The folder ``--model`` names: a path, or a Hub id's cached snapshot."""
    if is_hub_id(model):
        snapshot = cached_snapshot(model)
        if snapshot is not None:
            return snapshot
    return Path(model).expanduser().resolve()


def shown_name(folder: str) -> str:
    """A model folder as the game shows it: a Hub cache snapshot by its id
    (``Qwen/Qwen3-0.6B``, not ``…/models--Qwen--Qwen3-0.6B/snapshots/<commit>``)."""
    parts = Path(folder).parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3].removeprefix("models--").replace("--", "/", 1)
    return folder


def model_problem(model: str) -> str | None:
    """model_folder_problem for what the user typed (a path or a Hub id)."""
    folder = resolve_model(model)
    if not folder.exists() and is_hub_id(model):
        return (
            f"no such folder, and no {model} in the Hugging Face cache ({hub_cache()}); nothing is "
            f"downloaded here: fetch it first (`hf download {model}`), or give a model folder"
        )
    return model_folder_problem(folder)


# llama.cpp and Ollama models ship as GGUF: quantised for inference, with no weights to train.
FOR_INFERENCE = " (a GGUF file is for inference: train the Hugging Face model it came from)"


def model_folder_problem(folder: Path) -> str | None:
    """None when ``folder`` looks like a model folder; otherwise what is missing."""
    if folder.is_file():
        if (folder.parent / "config.json").is_file():  # model.safetensors or config.json itself
            return f"a file, not a folder: give the folder it is in ({folder.parent})"
        gguf = FOR_INFERENCE if folder.suffix.lower() == ".gguf" else ""
        return f"a file, not a folder: give a Hugging Face model folder (config.json and weights){gguf}"
    if not folder.is_dir():
        return "no such folder (a local Hugging Face model folder)"
    if not (folder / "config.json").is_file():
        quantised = any(folder.glob("*.gguf"))
        return f"no config.json in it; is it a save_pretrained folder?{FOR_INFERENCE if quantised else ''}"
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"its config.json cannot be read ({exc})"
    if not isinstance(config, dict) or "model_type" not in config:
        return "its config.json names no model_type; is it a transformers model's config?"
    if not any((folder / name).is_file() for name in WEIGHTS) and not any(folder.glob("*.safetensors")):
        return f"no weights in it (none of {', '.join(WEIGHTS)})"
    if not any((folder / name).is_file() for name in TOKENIZERS):
        return f"no tokenizer in it (none of {', '.join(TOKENIZERS)})"
    return None
