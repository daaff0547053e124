"""Loot: atomic checkpoints that hold everything needed to resume exactly.

A checkpoint is an ordinary Hugging Face model folder (safetensors weights, config,
tokenizer) plus ``trainer.pt`` (optimizer, scheduler, RNG states) and ``meta.json``
(step, data position, hero stats, the run's config). It is written into a temporary
folder, fsynced and renamed; the ledger row written after the rename is the commit
point, so a folder without a row is not loot.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.store.atomic import fsync_dir, read_json, write_json
from engine.store.ledger import Ledger

TMP_PREFIX = ".tmp-"


def loot_name(step: int) -> str:
    return f"step-{step:06d}"


@dataclass(frozen=True)
class Resumable:
    folder: Path
    meta: dict[str, Any]
    trainer_state: dict[str, Any]


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


class Vault:
    def __init__(self, save_dir: Path, ledger: Ledger) -> None:
        self.folder = save_dir / "checkpoints"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ledger = ledger

    def clean_incomplete(self) -> list[str]:
        """Remove what a crash left half-done: temp folders, and renamed folders whose
        ledger row was never written (not committed, so not loot). Returns their names."""
        committed = {row["name"] for row in self.ledger.live_loot()}
        removed = []
        for path in self.folder.iterdir():
            if path.name.startswith(TMP_PREFIX) or (path.is_dir() and path.name not in committed):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed

    def save(
        self,
        step: int,
        model: Any,
        tokenizer: Any,
        trainer_state: dict[str, Any],
        meta: dict[str, Any],
        ledger_row: dict[str, Any],
    ) -> dict[str, Any]:
        name = loot_name(step)
        final = self.folder / name
        tmp = self.folder / f"{TMP_PREFIX}{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        torch.save({**trainer_state, "rng": rng_state()}, tmp / "trainer.pt")
        write_json(tmp / "meta.json", {**meta, "step": step, "saved_at": time.time()})
        _fsync_tree(tmp)
        if final.exists():  # the same step saved twice (e.g. `s` right after auto loot)
            shutil.rmtree(final)
            self.ledger.mark_deleted(name)
        os.rename(tmp, final)
        fsync_dir(self.folder)
        row = {**ledger_row, "step": step, "name": name, "time": time.time()}
        self.ledger.record_loot(row)  # the commit point
        return row

    def newest(self) -> Resumable | None:
        for row in reversed(self.ledger.live_loot()):
            folder = self.folder / row["name"]
            if (folder / "meta.json").exists() and (folder / "trainer.pt").exists():
                state = torch.load(folder / "trainer.pt", weights_only=False)
                return Resumable(folder, read_json(folder / "meta.json"), state)
        return None

    def prune(self, keep_auto: int) -> list[str]:
        """Delete the oldest automatic loot beyond ``keep_auto``; manual and stop loot stay."""
        auto = [r for r in self.ledger.live_loot() if r.get("reason") == "auto"]
        removed = []
        for row in auto[:-keep_auto] if len(auto) > keep_auto else []:
            self.ledger.mark_deleted(row["name"])  # ledger first: never point at nothing
            shutil.rmtree(self.folder / row["name"], ignore_errors=True)
            removed.append(row["name"])
        return removed
