"""What a local Hugging Face model folder needs before it can be a hero: checked by
`realm play/train --model` and by the engine, before a hero slot is made, so a bad
folder is refused with the missing file named (not with a traceback later)."""

from __future__ import annotations

from pathlib import Path

WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZERS = ("tokenizer.json", "tokenizer.model", "vocab.json")


def model_folder_problem(folder: Path) -> str | None:
    """None when ``folder`` looks like a model folder; otherwise what is missing."""
    if not folder.is_dir():
        return "no such folder (a local Hugging Face model folder)"
    if not (folder / "config.json").is_file():
        return "no config.json in it; is it a save_pretrained folder?"
    if not any((folder / name).is_file() for name in WEIGHTS) and not any(folder.glob("*.safetensors")):
        return f"no weights in it (none of {', '.join(WEIGHTS)})"
    if not any((folder / name).is_file() for name in TOKENIZERS):
        return f"no tokenizer in it (none of {', '.join(TOKENIZERS)})"
    return None
