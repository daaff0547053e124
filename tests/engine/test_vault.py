"""The Vault in the engine and on the command line: each loot's own scores, pins,
deletion rules, compare, rewind, and the offline path."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest

from engine.protocol import messages as p
from engine.store import commands as vault_commands
from tests.conftest import losses, make_hero, newest_worker, realm_here, run_engine, run_worker


def vault_request(driver, command):  # type: ignore[no-untyped-def]
    """The answer to one command: VaultListed for ListLoot, else VaultReply (listings
    broadcast after earlier changes are skipped)."""
    kinds = (p.VaultListed,) if isinstance(command, p.ListLoot) else (p.VaultReply, p.CommandRejected)
    return driver.request(command, kinds, 300)


def test_loot_carries_the_scores_of_its_own_weights_and_the_vault_acts_on_it(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    driver, worker, thread = run_engine(*make_hero(tmp_path, hatchling_dir, eval_every=6, checkpoint_every=6))
    try:
        driver.hello()
        evaluated = driver.wait_until(
            lambda e: isinstance(e, p.CheckpointSaved) and e.loot.step == 6, 300
        ).loot
        assert evaluated.evaluated and evaluated.val_loss is not None  # an eval ran at its step
        driver.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step >= 8, 120)
        driver.send(p.Pause())
        driver.wait_for(p.Paused)
        driver.send(p.SaveNow())
        manual = driver.wait_for(p.CheckpointSaved).loot
        assert manual.step > 6 and not manual.evaluated and manual.val_loss is None  # honest
        listing = vault_request(driver, p.ListLoot())
        assert isinstance(listing, p.VaultListed)
        assert (listing.loot[0].name, listing.loot[-1].name) == (evaluated.name, manual.name)
        assert listing.resume_from == manual.name
        assert "training resumes from it" in listing.loot[-1].kept_because
        assert dict(listing.best)["val_loss"] != manual.name  # it has no val loss of its own

        refused = vault_request(driver, p.DeleteLoot(manual.name))
        assert isinstance(refused, p.VaultReply) and not refused.ok and "resumes from" in refused.message
        pinned = vault_request(driver, p.PinLoot(evaluated.name))
        assert pinned.ok
        after = driver.wait_for(p.VaultListed)  # every UI hears of the change
        assert after.loot[0].pinned and "pinned" in after.loot[0].kept_because

        scored = vault_request(driver, p.EvalLoot(manual.name))
        assert scored.ok and "evaluated" in scored.message, scored
        again = driver.wait_for(p.VaultListed)
        assert again.loot[-1].evaluated and again.loot[-1].skills[0].skill == "bin"

        driver.send(p.CompareLoot(evaluated.name, manual.name))
        compared = driver.wait_for(p.LootCompared, 300)
        assert driver.wait_for(p.VaultReply).ok
        assert (compared.a, compared.b) == (evaluated.name, manual.name)
        assert len(compared.problems) == len(worker.eval_sets["bin"]) > 0
        expected = [q.answer for q in worker.eval_sets["bin"]]
        assert [d.expected for d in compared.problems] == expected  # the right answers, in order
        for d in compared.problems:  # each loot's own answer, and its mark agrees with it
            assert d.a_right == (d.a_answer.strip() == d.expected) or not d.a_right
            assert d.b_right == (d.b_answer.strip() == d.expected) or not d.b_right
        assert dict((m, (a, b)) for m, a, b in compared.metrics)["step"] == (6, manual.step)
        missing = vault_request(driver, p.PinLoot("step-424242"))
        assert not missing.ok and evaluated.name in missing.message  # names what exists
    finally:
        worker.request_stop("test over")
        thread.join(60)


def test_a_rewound_run_reproduces_the_original_losses_and_sets_newer_loot_aside(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, max_steps=20)  # loot at 10 and 20
    original = losses(save.metrics)
    code = vault_commands.main(
        ["--save-dir", str(save.root), "--command", json.dumps({"type": "RewindTo", "name": "10"})]
    )
    assert code == 0
    assert (save.checkpoints / "step-000020-r1").is_dir() and not (save.checkpoints / "step-000020").exists()
    worker = run_worker(save, config, max_steps=20)
    assert worker.progress.step == 20
    replayed = losses(save.metrics)
    assert [replayed[s] for s in range(11, 21)] == [original[s] for s in range(11, 21)]
    names = sorted(x.name for x in save.checkpoints.iterdir())
    assert names == ["step-000010", "step-000020", "step-000020-r1"]  # both lines kept
    listing = realm_here("vault", "list", "--json", "--saves", str(save.root.parent))
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["step-000020-r1"]["set_aside"] and not rows["step-000020"]["set_aside"]
    pinned = realm_here("vault", "pin", "20-r1", "--saves", str(save.root.parent))  # short names work
    assert pinned.returncode == 0 and "step-000020-r1 pinned" in pinned.stdout
    refused = realm_here("vault", "rewind", "step-000020-r1", "--yes", "--saves", str(save.root.parent))
    assert refused.returncode == 1 and "set aside by an earlier rewind" in refused.stderr


def test_rewind_while_the_engine_runs_restarts_training_from_the_loot(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    driver, worker, thread = run_engine(*make_hero(tmp_path, hatchling_dir))
    try:
        driver.hello()
        # this test holds the first worker, as the engine's main does: its model and
        # optimizer must still be freed when a rewind's worker takes over
        first_model, first_optimizer = weakref.ref(worker.hero.model), weakref.ref(worker.trainer.optimizer)
        driver.send(p.SaveNow())
        target = driver.wait_for(p.CheckpointSaved).loot
        driver.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step >= target.step + 3, 120)
        reply = vault_request(driver, p.RewindTo(target.name))
        assert reply.ok and "set aside" in reply.message, reply
        fresh = driver.wait_for(p.Snapshot, 120)  # the new worker's state, to every UI
        assert fresh.stats.step == target.step
        assert worker.successor is not None and worker.successor.progress.step >= target.step
        assert any(x.set_aside for x in fresh.loot)  # the loot saved before rewinding is kept
        assert not fresh.warnings  # a rewind is not a crash
        gc.collect()
        assert first_model() is None and first_optimizer() is None
    finally:
        newest_worker(worker).request_stop("test over")
        thread.join(60)


def test_vault_cli_offline_lists_prunes_and_pins(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, max_steps=30)  # loot at 10, 20, 30
    saves = str(save.root.parent)
    rows = json.loads(realm_here("vault", "list", "--json", "--saves", saves).stdout)
    assert [r["name"] for r in rows] == ["step-000010", "step-000020", "step-000030"]
    for key in ("name", "step", "reason", "train_loss", "val_loss", "size_bytes", "kept_because", "skills"):
        assert key in rows[0], key
    assert rows[0]["size_bytes"] > 0
    config_path = save.config
    data = json.loads(config_path.read_text())
    data["vault"] = {"keep_last": 1}
    config_path.write_text(json.dumps(data))
    dry = realm_here("vault", "prune", "--dry-run", "--saves", saves)
    assert "would delete step-000010: older than the 1 newest" in dry.stdout
    assert len(list(save.checkpoints.iterdir())) == 3  # a dry run deletes nothing
    assert realm_here("vault", "pin", "10", "--saves", saves).returncode == 0
    pruned = realm_here("vault", "prune", "--saves", saves)
    assert "pruned step-000020" in pruned.stdout, pruned.stdout + pruned.stderr
    assert sorted(x.name for x in save.checkpoints.iterdir()) == ["step-000010", "step-000030"]
    best = realm_here("vault", "best", "--metric", "nonsense", "--saves", saves)
    assert best.returncode == 1 and "no loot has a value for 'nonsense'" in best.stderr
    gone = realm_here("vault", "delete", "9", "--saves", saves)  # said at once, not after a question
    assert gone.returncode == 1 and "no loot '9' (loot: step-000010, step-000030)" in gone.stderr, gone.stderr
    asked = realm_here("vault", "delete", "10", "--saves", saves)  # no terminal to answer: --yes is needed
    assert asked.returncode == 1 and "Delete step-000010? Add --yes" in asked.stderr, asked.stderr


def test_export_picks_the_current_line_not_newer_loot_set_aside(tmp_path: Path, hatchling_dir: Path) -> None:
    from engine.model.export import pick_loot

    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, max_steps=20)  # loot at 10 and 20
    command = json.dumps({"type": "RewindTo", "name": "10"})
    assert vault_commands.main(["--save-dir", str(save.root), "--command", command]) == 0
    assert pick_loot(save, None) == save.checkpoints / "step-000010"  # where training is
    assert pick_loot(save, "step-000020-r1") == save.checkpoints / "step-000020-r1"  # still there to ask for
    assert pick_loot(save, "20-r1") == pick_loot(save, "step-20-r1") == save.checkpoints / "step-000020-r1"
    assert pick_loot(save, "latest") == save.checkpoints / "step-000010"  # not the newer one set aside
    with pytest.raises(SystemExit, match="no loot 'step-9'"):
        pick_loot(save, "step-9")
