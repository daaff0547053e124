"""The watchdog: spikes are skipped, NaN rolls back to the newest loot with a lower learning
rate and reshuffled data, the intervention limit pauses DIO, and a resumed run makes the
same decisions (faults injected into the hatchling's loss)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import messages as p
from engine.protocol.config import HeroConfig, WatchdogConfig
from engine.protocol.savedir import SaveDir
from engine.run.server import EngineServer
from engine.run.worker import Worker, run_with_rewinds
from engine.store.ledger import Ledger
from engine.train import trainer as trainer_module
from engine.train.watchdog import OK, ROLLBACK, SKIP, Watchdog, gap_word, overfitting
from tests.conftest import make_hero, newest_worker, run_engine

QUICK = WatchdogConfig(
    window=16, min_history=4, spikes_to_rollback=3, max_interventions=2, grad_norm_sigmas=6.0
)


def steady(w: Watchdog, steps: int, start: int = 1) -> None:
    for i in range(steps):
        assert w.judge(start + i, 1.0 + 0.01 * (i % 3), 0.5 + 0.01 * (i % 2)).action == OK


def test_a_spike_is_skipped_and_does_not_enter_the_history() -> None:
    w = Watchdog(QUICK)
    assert w.judge(1, 50.0, 9.0).action == OK  # no history yet: nothing is a spike
    w.forget_history()
    steady(w, 8)
    verdict = w.judge(9, 10.0, 0.5)  # 10× the loss
    assert verdict.action == SKIP and "loss" in verdict.reason and "6σ" in verdict.reason
    assert w.judge(10, 1.0, 9.0).action == SKIP  # a gradient-norm spike alone counts too
    assert 10.0 not in w.losses and w.judge(11, 1.01, 0.5).action == OK
    loss_only = Watchdog(replace(QUICK, grad_norm_sigmas=0.0))  # the default: the norm is not judged
    steady(loss_only, 8)
    assert loss_only.judge(9, 1.0, 9.0).action == OK and loss_only.judge(10, 10.0, 0.5).action == SKIP


def test_nan_or_repeated_spikes_roll_back_and_each_rollback_halves_the_lr() -> None:
    w = Watchdog(QUICK)
    steady(w, 8)
    assert w.judge(9, math.nan, 0.5).action == ROLLBACK
    assert "not a number" in w.judge(9, 1.0, math.inf).reason
    for step in (10, 11):
        assert w.judge(step, 30.0, 0.5).action == SKIP
    third = w.judge(12, 30.0, 0.5)
    assert third.action == ROLLBACK and "3 spikes" in third.reason
    w.rolled_back(12)
    assert (w.lr_scale, w.seed_shift, len(w.losses)) == (0.5, 1, 0)
    assert w.may_roll_back(13)
    w.rolled_back(20)
    assert w.lr_scale == 0.25 and not w.may_roll_back(21)  # 2 in the window: the limit
    assert w.may_roll_back(20 + QUICK.intervention_window + 1)  # old ones leave the window


def test_spikes_outside_the_window_do_not_add_up() -> None:
    w = Watchdog(QUICK)
    steady(w, 8)
    assert w.judge(9, 30.0, 0.5).action == SKIP
    steady(w, 30, start=10)
    assert w.judge(40, 30.0, 0.5).action == SKIP
    assert w.judge(41, 30.0, 0.5).action == SKIP  # 2 in the window: not yet a rollback


def test_the_state_round_trips_and_decides_the_same() -> None:
    a = Watchdog(QUICK)
    steady(a, 10)
    a.judge(11, 30.0, 0.5)
    b = Watchdog.from_dict(QUICK, json.loads(json.dumps(a.to_dict())))
    for step, loss in ((12, 1.0), (13, 40.0), (14, 1.02), (15, 50.0)):
        assert a.judge(step, loss, 0.5) == b.judge(step, loss, 0.5)
    assert a.to_dict() == b.to_dict()
    off = Watchdog(replace(QUICK, enabled=False))
    assert off.judge(1, math.nan, math.nan).action == OK


def test_overfitting_is_read_from_the_train_val_gap() -> None:
    rising = [(100, 0.9, 1.0), (200, 0.8, 1.1), (300, 0.7, 1.3)]
    text = overfitting(rising, 3)
    assert "rose 3 evals in a row" in text and "gap 0.60 (overfitting)" in text and "train.lr" in text
    assert overfitting(rising[:2], 3) == ""  # not enough evals yet
    assert overfitting([(100, 0.9, 1.0), (200, 0.8, 0.95), (300, 0.7, 1.3)], 3) == ""  # not every eval
    assert overfitting([(100, 0.7, 1.0), (200, 0.8, 1.1), (300, 0.9, 1.2)], 3) == ""  # train rose too
    assert [gap_word(g) for g in (0.1, 0.4, 0.7)] == ["fine", "watch", "overfitting"]
    assert overfitting([(100, 0.05, 0.015), (200, 0.04, 0.02), (300, 0.03, 0.033)], 3) == ""  # gap fine


def test_the_engine_reports_overfitting_once_per_validation_set(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.run import worker as worker_module

    save, config = hero_with_watchdog(tmp_path, hatchling_dir)
    worker = Worker(save, config, EngineServer())
    worker.start()
    rising = iter([1.0, 1.1, 1.2, 1.3, 1.4])
    monkeypatch.setattr(worker_module, "validation_loss", lambda *a: next(rising))
    for _ in range(5):
        worker.progress.smoothed_loss = (worker.progress.smoothed_loss or 1.0) * 0.9  # train loss falls
        worker.run_eval()
    said = [w for w in worker.warnings if "Watchdog: validation loss rose" in w]
    assert len(said) == 1 and "steps" in said[0]
    assert [r["kind"] for r in interventions(save)] == ["overfitting"]
    worker.keeper.stop()


# ---------------------------------------------------------------------- in the engine


def poison(
    monkeypatch: pytest.MonkeyPatch, worker_steps: dict[str, Any], at: set[int], factor: float
) -> None:
    """Multiply the loss of the steps in ``at`` (the step being taken) by ``factor``
    (nan: a poisoned batch; a large number: a spike)."""
    real = trainer_module.token_loss_sum

    def faulty(model: Any, batch: Any, body: Any = None) -> Any:
        loss = real(model, batch, body)
        live = newest_worker(worker_steps["worker"])
        return loss * factor if live.progress.step + 1 in at else loss

    monkeypatch.setattr(trainer_module, "token_loss_sum", faulty)


def poison_in_turn(monkeypatch: pytest.MonkeyPatch, holder: dict[str, Any], steps: list[int]) -> list[int]:
    """A nan loss at each of ``steps`` once, in that order (a rollback replays a step: the
    next one in the list is then the one watched). Returns the steps poisoned so far."""
    real = trainer_module.token_loss_sum
    poisoned: list[int] = []

    def faulty(model: Any, batch: Any, body: Any = None) -> Any:
        loss = real(model, batch, body)
        step = newest_worker(holder["worker"]).progress.step + 1
        if len(poisoned) < len(steps) and step == steps[len(poisoned)]:
            poisoned.append(step)
            return loss * math.nan
        return loss

    monkeypatch.setattr(trainer_module, "token_loss_sum", faulty)
    return poisoned


def _remember_first(start: Any, box: dict[str, Any]) -> Any:
    def wrapped(self: Worker) -> None:
        box["worker"] = box["worker"] or self
        start(self)

    return wrapped


def hero_with_watchdog(tmp_path: Path, hatchling_dir: Path, **watch: Any) -> tuple[SaveDir, HeroConfig]:
    save, config = make_hero(tmp_path, hatchling_dir, checkpoint_every=4)
    config = replace(config, watchdog=replace(QUICK, **watch))
    save.config.write_text(config.to_json())
    return save, config


def run_to(save: SaveDir, config: HeroConfig, steps: int, holder: dict[str, Any]) -> Worker:
    config = replace(config, game=replace(config.game, max_steps=steps))
    worker = Worker(save, config, EngineServer())
    holder["worker"] = worker
    worker.start()
    run_with_rewinds(worker, lambda new: holder.__setitem__("worker", new))
    last: Worker = holder["worker"]
    return last


def interventions(save: SaveDir) -> list[dict[str, Any]]:
    ledger = Ledger(save.ledger, read_only=True)
    rows = [dict(r) for r in ledger.watchdog.all()]
    ledger.close()
    return rows


def test_a_poisoned_batch_rolls_back_lowers_the_lr_and_training_goes_on(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save, config = hero_with_watchdog(tmp_path, hatchling_dir, max_interventions=5)
    holder: dict[str, Any] = {}
    poison_in_turn(monkeypatch, holder, [7])  # the first time only
    first = {"worker": None}
    monkeypatch.setattr(Worker, "start", _remember_first(Worker.start, first))
    last = run_to(save, config, 12, holder)
    assert last is not first["worker"]  # a new worker took over after the rollback
    assert last.progress.step == 12
    assert last.watchdog.lr_scale == 0.5 and last.watchdog.seed_shift == 1
    assert last.trainer.scheduler.base_lrs[0] == pytest.approx(config.train.lr * 0.5)
    assert last.stream.seed != config.train.seed  # reshuffled
    assert all(math.isfinite(float(x.detach().abs().sum())) for x in last.hero.model.parameters())
    rows = interventions(save)
    assert [(r["kind"], r["step"], r["loot"]) for r in rows] == [("rollback", 7, "step-000004")]
    assert "not a number" in rows[0]["reason"]
    events = [json.loads(x) for x in save.events.read_text().splitlines()]
    assert any("rolls back from step 7 to step-000004" in e["text"] for e in events)
    meta = json.loads((save.checkpoints / "step-000012" / "meta.json").read_text())
    assert meta["watchdog"]["lr_scale"] == 0.5  # saved with loot: a resume keeps it


def test_a_second_rollback_skips_loot_the_first_one_set_aside(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first rollback (step 7) saves step 7 and sets it aside as step-000007-r1; the new
    # line is poisoned at step 8, before it saves loot of its own there: the newest loot
    # below 8 is then the set-aside one, which training never resumes from (it once crashed
    # the worker thread with "set aside by an earlier rewind").
    save, config = hero_with_watchdog(tmp_path, hatchling_dir, max_interventions=5)
    holder: dict[str, Any] = {}
    poisoned = poison_in_turn(monkeypatch, holder, [7, 8])
    last = run_to(save, config, 12, holder)
    assert poisoned == [7, 8] and last.progress.step == 12
    rows = interventions(save)
    assert [(r["kind"], r["step"], r["loot"]) for r in rows] == [
        ("rollback", 7, "step-000004"),
        ("rollback", 8, "step-000004"),
    ]
    assert last.watchdog.lr_scale == 0.25
    assert (save.checkpoints / "step-000007-r1").is_dir()  # set aside, still in the vault


def test_a_stop_at_the_step_of_set_aside_loot_still_saves_the_new_line(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a rollback from step 7, step-000007-r1 is the old line's; the new line stopping
    # at its own step 7 must save step-000007, or the next start would resume from step 4.
    save, config = hero_with_watchdog(tmp_path, hatchling_dir, max_interventions=5)
    holder: dict[str, Any] = {}
    poisoned = poison_in_turn(monkeypatch, holder, [7])
    last = run_to(save, config, 7, holder)
    assert poisoned == [7] and last.progress.step == 7
    assert (save.checkpoints / "step-000007-r1").is_dir()
    assert (save.checkpoints / "step-000007").is_dir()
    assert last.vault.resume_name() == "step-000007"


def test_the_intervention_limit_pauses_dio_and_says_why(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save, config = hero_with_watchdog(tmp_path, hatchling_dir, max_interventions=1)
    driver, worker, thread = run_engine(save, config)
    holder = {"worker": worker}
    poison(monkeypatch, holder, at={7}, factor=math.nan)  # every time: the rollback does not help
    try:
        driver.hello()
        rollback = driver.wait_until(lambda e: isinstance(e, p.WatchdogIntervened), 120)
        assert rollback.kind == "rollback" and rollback.loot == "step-000004" and rollback.lr_scale == 0.5
        paused = driver.wait_until(lambda e: isinstance(e, p.WatchdogIntervened) and e.kind == "pause", 120)
        assert paused.step == 7
        driver.wait_for(p.Paused, 60)
        said = next(e for e in driver.seen if isinstance(e, p.LogLine) and "paused at step 7" in e.text)
        assert "1 rollback in" in said.text and "space" in said.text and "train.lr" in said.text
    finally:
        last = newest_worker(worker)
        last.request_stop("test over")
        last.set_paused(False)
        thread.join(60)
    assert [r["kind"] for r in interventions(save)] == ["rollback", "pause"]


def test_a_run_resumed_after_a_kill_makes_the_same_decisions(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save, config = hero_with_watchdog(tmp_path / "a", hatchling_dir, max_interventions=5)
    twin, _ = hero_with_watchdog(tmp_path / "b", hatchling_dir, max_interventions=5)
    holder: dict[str, Any] = {}
    poison(monkeypatch, holder, at={10, 14}, factor=200.0)  # two spikes after loot 8
    run_to(save, config, 16, holder)  # uninterrupted
    run_to(twin, config, 8, holder)
    run_to(twin, config, 16, holder)  # a fresh engine resumes from loot 8, as after kill -9
    a = [(r["kind"], r["step"]) for r in interventions(save)]
    b = [(r["kind"], r["step"]) for r in interventions(twin)]
    assert a == b == [("skip", 10), ("skip", 14)]


def test_fp16_overflowing_step_after_step_pauses_dio_and_says_why(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp16 whose gradients overflow at every step learns nothing, forever: after a run of
    overflows (30 in the engine, 3 here) DIO pauses and names the setting to change. The
    overflow steps themselves are not the watchdog's interventions (the scale is found)."""
    import torch

    from engine.run import guard

    monkeypatch.setattr(guard, "FP16_OVERFLOWS_GIVE_UP", 3)
    monkeypatch.setattr(trainer_module, "has_fp16", lambda _device: True)  # emulated on this CPU
    real_scaler = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device: real_scaler(device, init_scale=2.0**100))
    save, config = hero_with_watchdog(tmp_path, hatchling_dir)
    config = replace(config, train=replace(config.train, precision="fp16"))
    save.config.write_text(config.to_json())
    driver, worker, thread = run_engine(save, config)
    try:
        driver.hello()
        paused = driver.wait_until(lambda e: isinstance(e, p.WatchdogIntervened) and e.kind == "pause", 120)
        assert paused.step == 3 and "fp16 gradients overflowed 3 steps in a row" in paused.reason
        driver.wait_for(p.Paused, 60)
        said = next(e for e in driver.seen if isinstance(e, p.LogLine) and "paused at step 3" in e.text)
        assert "train.precision fp32" in said.text
    finally:
        worker.request_stop("test over")
        worker.set_paused(False)
        thread.join(60)
    assert [r["kind"] for r in interventions(save)] == ["pause"]
    grads = [
        json.loads(x).get("grad_norm", 0) for x in save.metrics.read_text().splitlines() if '"loss"' in x
    ]
    assert grads[:3] == [None, None, None]  # no norm to keep for a step that overflowed
