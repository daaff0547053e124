"""Loot is safe and resuming is exact: a run split by a restart reproduces the losses
of an uninterrupted run step for step (fixed seed, CPU, one thread)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.protocol.config import VaultConfig
from engine.run.server import EngineServer
from engine.run.worker import Worker
from engine.store.vault import Vault
from tests.conftest import losses, make_hero, run_worker


def test_resumed_run_matches_uninterrupted(tmp_path: Path, hatchling_dir: Path) -> None:
    save_a, config_a = make_hero(tmp_path / "a", hatchling_dir)
    run_worker(save_a, config_a, 24)
    save_b, config_b = make_hero(tmp_path / "b", hatchling_dir)
    first = run_worker(save_b, config_b, 13)  # stops (and saves) at 13, mid-way between loot
    assert first.progress.step == 13
    second = run_worker(save_b, config_b, 24)
    assert second.progress.step == 24
    a, b = losses(save_a.metrics), losses(save_b.metrics)
    assert sorted(a) == sorted(b) == list(range(1, 25))
    assert [b[s] for s in range(14, 25)] == [a[s] for s in range(14, 25)]
    assert b[14] != b[24]  # it really trained


def loot_then_a_step(save, config):  # type: ignore[no-untyped-def]
    """A worker that trained one step, took loot at step 1, and trained one more."""
    worker = Worker(save, config, EngineServer())
    worker.start()
    worker._train_step()
    good = worker.take_loot("manual")
    worker._train_step()
    return worker, good


def test_interrupted_rename_leaves_ledger_and_old_loot(hero, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    save, config = hero
    worker, good = loot_then_a_step(save, config)

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt("power cut between write and rename")

    monkeypatch.setattr("engine.store.vault.os.rename", crash)
    with pytest.raises(KeyboardInterrupt):
        worker.take_loot("manual")
    monkeypatch.undo()
    assert [r["name"] for r in worker.ledger.live_loot()] == [good.name]
    leftovers = [p.name for p in save.checkpoints.iterdir() if p.name != good.name]
    assert leftovers and all(n.startswith(".tmp-") for n in leftovers)
    # The next start removes the temp folder (provably unfinished) and resumes from the good loot.
    vault = Vault(save.root, worker.ledger)
    assert vault.recover() == [("warning", f"Removed unfinished loot {n} left by a crash") for n in leftovers]
    newest = vault.read(next(vault.candidates()))
    assert newest.folder.name == good.name and newest.meta["step"] == 1
    assert (newest.folder / "model.safetensors").exists()
    assert sorted(p.name for p in save.checkpoints.iterdir()) == [good.name]


def test_renamed_but_unrecorded_loot_is_adopted(hero, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A folder with a final name is complete (it was fsynced before the rename): the
    ledger row it missed is rebuilt from its own meta.json."""
    save, config = hero
    worker, _ = loot_then_a_step(save, config)

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt("killed after the rename, before the ledger row")

    monkeypatch.setattr(worker.ledger, "record_loot", crash)
    with pytest.raises(KeyboardInterrupt):
        worker.take_loot("manual")
    monkeypatch.undo()
    assert (save.checkpoints / "step-000002").exists()
    vault = Vault(save.root, worker.ledger)
    assert vault.recover() == [
        ("warning", "Loot step-000002 was missing from the ledger; adopted from its meta.json")
    ]
    newest = vault.read(next(vault.candidates()))
    assert newest.folder.name == "step-000002" and newest.meta["step"] == 2
    adopted = worker.ledger.live_loot()[-1]
    assert adopted["reason"] == "manual" and adopted["step"] == 2


def test_retention_keeps_the_newest_and_the_pinned_whatever_their_reason(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, vault=VaultConfig(keep_last=2, keep_best=False))
    worker = Worker(save, replace(config, game=replace(config.game, checkpoint_every=2)), EngineServer())
    worker.start()
    for _ in range(3):
        worker._train_step()
    worker.take_loot("manual")
    worker.vault.pin("step-000003", True)
    worker._train_step()
    worker.take_loot("quest")  # quest loot is subject to the policy too
    for step in range(5, 11):
        worker._train_step()
        if step % 2 == 0:
            worker.take_loot("auto")
    names = sorted(p.name for p in save.checkpoints.iterdir())
    assert names == ["step-000003", "step-000008", "step-000010"]
    assert [r["name"] for r in worker.ledger.live_loot()] == names
    assert "pruned loot step-000004: older than the 2 newest, not pinned, not best" in save.events.read_text()
