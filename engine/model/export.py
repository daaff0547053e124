"""Export a loot as a plain Hugging Face model folder (`realm export`).

Full-mode loot is already a model folder: its weights, config and tokenizer are copied
(not the optimizer state). LoRA/QLoRA loot holds adapters only: they are loaded over the
hero's base model and merged into its weights (``merge_and_unload``), so the result
loads with ``AutoModelForCausalLM.from_pretrained`` and no peft. (QLoRA merges into the
full-precision base, loaded from its folder, not into the 4-bit copy used to train.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from engine.model.hero import base_folder
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir
from engine.store.ledger import Ledger
from engine.store.vault import Vault, main_line

MODEL_FILES = ("*.safetensors", "*.json", "*.jinja", "tokenizer*", "*.model", "*.txt")
SKIP = {"meta.json", "trainer.pt", "adapter_config.json"}


def pick_loot(save: SaveDir, name: str | None) -> Path:
    live = Ledger(save.ledger, read_only=True).live_loot()
    if not live:
        raise SystemExit("realm export: this hero has no loot yet (press s in the game, or wait for one)")
    if name is None:  # where training is: a rewind's set-aside loot may be newer, not current
        current = main_line(live)
        return save.checkpoints / (current[-1] if current else live[-1])["name"]
    try:  # the names every other command takes: 200, step-200, latest, best-bin
        return save.checkpoints / Vault(save.root, Ledger(save.ledger, read_only=True)).find(name)["name"]
    except KeyError as exc:
        raise SystemExit(f"realm export: {exc.args[0]}") from None


def export(save: SaveDir, loot: Path, dest: Path) -> str:
    config = HeroConfig.load(save.config)
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if config.mode == "full":
        tmp.mkdir(parents=True)
        for pattern in MODEL_FILES:
            for path in loot.glob(pattern):
                if path.name not in SKIP:
                    shutil.copy2(path, tmp / path.name)
        how = "copied"
    else:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base = AutoModelForCausalLM.from_pretrained(base_folder(config, save), dtype=torch.float32)
        merged = PeftModel.from_pretrained(base, loot).merge_and_unload()
        merged.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(loot).save_pretrained(tmp)
        how = f"{config.mode} adapters merged into the base"
    (tmp / "realm_export.json").write_text(
        json.dumps({"hero": config.name, "loot": loot.name, "mode": config.mode, "base": config.model_label})
    )
    share(tmp)
    tmp.rename(dest)  # a half-written export never has the final name
    return how


def share(folder: Path) -> None:
    """An export is an ordinary model folder for other tools: 0644 files, 0755 folders
    (the save folder it came from is private, 0700)."""
    os.chmod(folder, 0o755)
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.model.export", description=__doc__)
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--loot", help="loot name (default: the newest of the current line of training)")
    parser.add_argument("dest", type=Path, help="a new folder for the model")
    args = parser.parse_args(argv)
    save = SaveDir(args.save_dir)
    if not save.config.exists():
        raise SystemExit(f"realm export: no hero at {save.root}")
    dest: Path = args.dest.expanduser().absolute()
    if dest.exists():
        raise SystemExit(f"realm export: {dest} already exists; give a new folder")
    if save.root.absolute() in dest.parents:
        raise SystemExit("realm export: export outside the hero's save folder")
    loot = pick_loot(save, args.loot)
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        how = export(save, loot, dest)
    except OSError as exc:  # not a folder, no permission, a full disk: nothing is left behind
        shutil.rmtree(dest.with_name(f".{dest.name}.partial"), ignore_errors=True)
        raise SystemExit(f"realm export: cannot write {dest}: {exc.strerror or exc}") from None
    print(f"Exported {loot.name} to {dest} ({how}); load it with AutoModelForCausalLM.from_pretrained.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
