"""Loot: atomic checkpoints that hold everything needed to resume exactly.

A checkpoint is an ordinary Hugging Face model folder (safetensors weights, config,
tokenizer) plus ``trainer.pt`` (optimizer, scheduler, RNG states) and ``meta.json``
(step, data position, hero stats, the run's config, and its own ledger row). It is
written into a temporary folder, fsynced and renamed: a folder with a final name is
complete. The ledger row written after the rename records it; when the ledger lost
it (deleted, truncated, rewritten), the folder's own ``meta.json`` puts it back.

Nothing here deletes loot it cannot prove unfinished: only the temp folders the vault
itself writes are removed, and loot the retention policy (``retention.py``) or the user
gave up, each with a log line. A folder that cannot be read is renamed ``NAME.corrupt``
and kept.

Names: ``step-000200`` is loot of the current line of training. A rewind to an older
loot sets the newer ones aside as ``step-000200-r1`` (the first rewind's), so the new
line can save its own step 200; set-aside loot can be listed, pinned, exported and
asked, but training never resumes from it.

torch is imported only where weights are read or written: `realm vault` lists, pins
and prunes without it.
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

from engine.protocol.config import VaultConfig
from engine.protocol.names import canonical_loot, loot_name
from engine.store import retention
from engine.store.atomic import fsync_dir, read_json, write_json
from engine.store.ledger import Ledger

TMP_PREFIX = ".tmp-"
LOOT_NAME = re.compile(r"^step-(\d{6,})(-r\d+)?$")
CORRUPT_SUFFIX = ".corrupt"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_main_line(name: str) -> bool:
    """Loot of the current line of training (not set aside by a rewind)."""
    match = LOOT_NAME.match(name)
    return bool(match) and match.group(2) is None  # type: ignore[union-attr]


def main_line(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger rows of the current line of training, in their order: what "the newest loot"
    means when the question is where training is (set-aside loot can share a step with it)."""
    return [row for row in rows if is_main_line(row["name"])]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


@dataclass(frozen=True)
class Resumable:
    folder: Path
    meta: dict[str, Any]
    trainer_state: dict[str, Any]


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import torch

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


def missing_parts(folder: Path) -> list[str]:
    """What a loot folder lacks to be loot (empty: complete)."""
    missing = [name for name in ("meta.json", "trainer.pt") if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights")
    return missing


class Vault:
    def __init__(self, save_dir: Path, ledger: Ledger) -> None:
        self.folder = save_dir / "checkpoints"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ledger = ledger

    # ------------------------------------------------------------------ start-up

    def recover(self) -> list[tuple[str, str]]:
        """Make the ledger and the folders agree after whatever happened while the engine
        was down. Returns (level, message) lines for the log and the game:

        - temp folders (a save cut short) are removed: the only thing ever deleted;
        - a complete loot folder the ledger does not list is adopted from its meta.json;
        - a ledger row whose folder is gone is marked deleted (it cannot resume);
        - a final-named folder that is not complete is left alone and reported."""
        notes: list[tuple[str, str]] = []
        listed = {row["name"] for row in self.ledger.live_loot()}
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith(TMP_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
                notes.append(("warning", f"Removed unfinished loot {path.name} left by a crash"))
            elif LOOT_NAME.match(path.name) and path.is_dir() and path.name not in listed:
                notes.append(self._adopt(path))
        for row in self.ledger.live_loot():
            if not (self.folder / row["name"]).is_dir():
                self.ledger.mark_deleted(row["name"])
                notes.append(("warning", f"Loot {row['name']} is in the ledger but its folder is gone"))
        return notes

    def _adopt(self, folder: Path) -> tuple[str, str]:
        missing = missing_parts(folder)
        if missing:
            return "warning", f"{folder.name} is not complete loot (no {', '.join(missing)}); left as it is"
        try:
            meta = read_json(folder / "meta.json")
            row = ledger_row_from_meta(folder.name, meta, (folder / "meta.json").stat().st_mtime)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return "warning", f"{folder.name} has an unreadable meta.json ({exc}); left as it is"
        self.ledger.record_loot(row)
        return "warning", f"Loot {folder.name} was missing from the ledger; adopted from its meta.json"

    def candidates(self) -> Iterator[Path]:
        """Loot folders to resume from, newest first (the current line only)."""
        for row in reversed(self.ledger.live_loot()):
            if is_main_line(row["name"]):
                yield self.folder / row["name"]

    def resume_point(self) -> tuple[Resumable | None, list[str]]:
        """The newest loot that reads whole, and what went wrong on the way there: one
        that does not read (a cut weights file, a torn trainer.pt) is kept as
        NAME.corrupt and the one before it is tried. None: start from the base model."""
        problems: list[str] = []
        skipped: list[str] = []
        for folder in list(self.candidates()):
            try:
                resume = self.read(folder)
            except Exception as exc:  # anything unreadable: never a reason to stop for good
                kept = self.mark_corrupt(folder)
                why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                problems.append(f"Loot {folder.name} cannot be read ({why}); it is kept as {kept.name}")
                skipped.append(folder.name)
                continue
            if skipped:
                problems.append(f"Resuming from loot {folder.name} instead of {skipped[0]}")
            return resume, problems
        if skipped:
            problems.append(f"No loot could be read ({', '.join(skipped)}): starting from the base model")
        return None, problems

    def read(self, folder: Path) -> Resumable:
        """The loot's meta and trainer state, with its weight files checked whole (a cut
        safetensors file fails its header check); raises when anything is unreadable."""
        missing = missing_parts(folder)
        if missing:
            raise OSError(f"no {', '.join(missing)}")
        meta = read_json(folder / "meta.json")
        if not isinstance(meta, dict) or "step" not in meta or "data_position" not in meta:
            raise ValueError("meta.json lacks the step and data position")
        for weights in folder.glob("*.safetensors"):
            with safe_open(str(weights), "pt"):
                pass
        import torch

        state = torch.load(folder / "trainer.pt", weights_only=False)
        return Resumable(folder, meta, state)

    def mark_corrupt(self, folder: Path) -> Path:
        """Keep an unreadable loot, out of the way: ``NAME.corrupt``, and its ledger row
        marked (so nothing resumes from it or prunes it)."""
        target = folder.with_name(folder.name + CORRUPT_SUFFIX)
        n = 2
        while target.exists():
            target = folder.with_name(f"{folder.name}{CORRUPT_SUFFIX}-{n}")
            n += 1
        os.rename(folder, target)
        self.ledger.mark_corrupt(folder.name, target.name)
        return target

    # ------------------------------------------------------------------ saving

    def save(
        self,
        step: int,
        model: Any,
        tokenizer: Any,
        trainer_state: dict[str, Any],
        meta: dict[str, Any],
        ledger_row: dict[str, Any],
    ) -> dict[str, Any]:
        """Write a loot; on any failure (a full disk) the temp folder is removed and the
        committed loot is untouched, and the error is raised."""
        import torch

        name = loot_name(step)
        final = self.folder / name
        tmp = self.folder / f"{TMP_PREFIX}{name}-{os.getpid()}"
        now = time.time()
        row = {**ledger_row, "step": step, "name": name, "time": now}
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            torch.save({**trainer_state, "rng": rng_state()}, tmp / "trainer.pt")
            write_json(tmp / "meta.json", {**meta, "step": step, "saved_at": now, "ledger_row": row})
            _fsync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():  # the same step saved twice (e.g. `s` right after auto loot)
            shutil.rmtree(final)
            self.ledger.mark_deleted(name)
        os.rename(tmp, final)
        fsync_dir(self.folder)
        row["size_bytes"] = folder_bytes(final)
        self.ledger.record_loot(row)  # the ledger's record of it
        return row

    # ------------------------------------------------------------------ the shelf

    def rows(self) -> list[dict[str, Any]]:
        """Live loot, oldest first, each with its size on disk."""
        rows = self.ledger.live_loot()
        for row in rows:
            if row.get("size_bytes") is None:  # adopted or older loot
                folder = self.folder / row["name"]
                row["size_bytes"] = folder_bytes(folder) if folder.is_dir() else 0
        return rows

    def resume_name(self) -> str | None:
        """The loot training resumes from: the newest of the current line."""
        return next(
            (row["name"] for row in reversed(self.ledger.live_loot()) if is_main_line(row["name"])), None
        )

    def budget_bytes(self, policy: VaultConfig) -> int:
        if policy.disk_budget_gb > 0:
            return int(policy.disk_budget_gb * 1e9)
        return shutil.disk_usage(self.folder).total // 10

    def plan(self, policy: VaultConfig) -> retention.Plan:
        return retention.plan(self.rows(), policy, self.resume_name(), self.budget_bytes(policy))

    def prune(self, policy: VaultConfig) -> list[retention.Verdict]:
        """Delete what the policy gives up; returns each deletion with its reason."""
        doomed = self.plan(policy).doomed
        for verdict in doomed:
            self.delete(verdict.name)
        return doomed

    def find(self, name: str) -> dict[str, Any]:
        """The live loot called ``name`` (``200`` and ``step-200`` are understood too, and
        ``latest`` and ``best-METRIC``); KeyError names those that exist."""
        rows = self.ledger.live_loot()
        wanted = name.strip()
        if wanted == "latest" and rows:  # where training is: never a loot a rewind set aside
            return max(main_line(rows) or rows, key=lambda r: (r.get("time", 0), r["step"]))
        if wanted.startswith("best-"):
            winner = retention.best(self.rows(), wanted.removeprefix("best-").replace("-", "_"))
            winner = winner or retention.best(self.rows(), wanted.removeprefix("best-"))
            if winner is not None:
                return winner
        wanted = canonical_loot(wanted)  # 200, step-200, 200-r1
        for row in rows:
            if row["name"] == wanted:
                return row
        names = ", ".join(r["name"] for r in rows) or "none yet"
        raise KeyError(f"no loot {name!r} (loot: {names})")

    def delete(self, name: str) -> None:
        self.ledger.mark_deleted(name)  # ledger first: never point at nothing
        shutil.rmtree(self.folder / name, ignore_errors=True)

    def pin(self, name: str, pinned: bool) -> None:
        self.ledger.update_loot(name, {"pinned": pinned})

    def set_aside_after(self, step: int) -> list[tuple[str, str]]:
        """A rewind to ``step``: every newer loot of the current line is renamed
        ``NAME-rN`` (N: this rewind's number) and stays in the vault. Returns (old, new)."""
        used = [
            int(m.group(2)[2:])
            for p in self.folder.iterdir()
            if (m := LOOT_NAME.match(p.name)) and m.group(2)
        ]
        suffix = f"-r{max(used, default=0) + 1}"
        moved = []
        for row in self.ledger.live_loot():
            if is_main_line(row["name"]) and row["step"] > step:
                new = row["name"] + suffix
                os.rename(self.folder / row["name"], self.folder / new)
                self.ledger.rename_loot(row["name"], new)
                moved.append((row["name"], new))
        fsync_dir(self.folder)
        return moved


def ledger_row_from_meta(name: str, meta: dict[str, Any], mtime: float) -> dict[str, Any]:
    """A loot's ledger row, rebuilt from its own meta.json (older loot carry no copy of
    the row: it is derived from what they do carry)."""
    step = int(meta["step"])
    match = LOOT_NAME.match(name)
    if match is None or int(match.group(1)) != step:
        raise ValueError(f"meta.json says step {step}")
    saved = meta.get("ledger_row")
    if isinstance(saved, dict):
        return {**saved, "step": step, "name": name}
    progress = meta.get("progress", {})
    return {
        "reason": "adopted",
        "train_loss": progress.get("smoothed_loss"),
        "val_loss": progress.get("val_loss"),
        "lr": 0.0,
        "source": meta.get("source", ""),
        "step": step,
        "name": name,
        "time": meta.get("saved_at", mtime),
    }
