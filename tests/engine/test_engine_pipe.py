"""The engine driven over a multiprocessing.Pipe(), as the game drives it."""

from __future__ import annotations

import time
from multiprocessing import Pipe

from engine.protocol import messages as p
from engine.run.server import EngineServer
from engine.run.worker import Worker


def test_hello_is_answered_by_a_snapshot(engine) -> None:  # type: ignore[no-untyped-def]
    driver, _worker = engine
    driver.send(p.Hello())
    snap = driver.wait_for(p.Snapshot)
    assert snap.protocol_version == p.PROTOCOL_VERSION
    assert snap.hero == "dio" and snap.model == "hatchling" and snap.device == "cpu"
    assert snap.params > 0 and snap.pid > 0
    step = driver.wait_for(p.StepCompleted)
    assert step.loss > 0 and step.stats.step == step.step


def test_no_events_before_hello(engine) -> None:  # type: ignore[no-untyped-def]
    driver, _worker = engine
    time.sleep(1.0)
    assert not driver.conn.poll(0)
    driver.send(p.Pause())
    rejected = driver.wait_for(p.CommandRejected)
    assert "Hello" in rejected.reason


def test_pause_stops_stepping_and_resume_restarts(engine) -> None:  # type: ignore[no-untyped-def]
    driver, worker = engine
    driver.send(p.Hello())
    driver.wait_for(p.StepCompleted)
    driver.send(p.Pause())
    paused = driver.wait_for(p.Paused)
    frozen = worker.progress.step
    assert paused.step == frozen
    time.sleep(1.0)
    assert worker.progress.step == frozen  # truly stopped, not just reported
    while driver.conn.poll(0.2):  # nothing about steps arrives while paused
        assert not isinstance(driver.conn.recv(), p.StepCompleted)
    driver.send(p.Resume())
    driver.wait_for(p.Resumed)
    after = driver.wait_for(p.StepCompleted)
    assert after.step > frozen


def test_save_now_yields_loot(engine) -> None:  # type: ignore[no-untyped-def]
    driver, worker = engine
    driver.send(p.Hello())
    driver.wait_for(p.StepCompleted)
    driver.send(p.SaveNow())
    saved = driver.wait_for(p.CheckpointSaved)
    assert saved.loot.reason == "manual"
    folder = worker.save.checkpoints / saved.loot.name
    assert (folder / "model.safetensors").exists() and (folder / "trainer.pt").exists()
    assert [r["name"] for r in worker.ledger.live_loot()] == [saved.loot.name]


def test_stop_saves_then_says_stopped(engine) -> None:  # type: ignore[no-untyped-def]
    driver, _worker = engine
    driver.send(p.Hello())
    driver.wait_for(p.StepCompleted)
    driver.send(p.Stop())
    stopped = driver.wait_for(p.Stopped)
    assert stopped.last_loot_step == stopped.step
    loot = [e for e in driver.seen if isinstance(e, p.CheckpointSaved)]
    assert loot and loot[-1].loot.reason == "stop"


def test_step_events_are_throttled(engine) -> None:  # type: ignore[no-untyped-def]
    driver, _worker = engine
    driver.send(p.Hello())
    driver.wait_for(p.StepCompleted)
    start = time.monotonic()
    events = []
    while time.monotonic() - start < 2.0:
        if driver.conn.poll(0.05):
            event = driver.conn.recv()
            if isinstance(event, p.StepCompleted):
                events.append(event)
    assert len(events) <= 21  # <= 10/s, with slack for the window edges
    steps = sum(e.steps for e in events)
    assert steps == events[-1].step - events[0].step + events[0].steps  # no step unaccounted


def test_wrong_protocol_version_is_refused(engine) -> None:  # type: ignore[no-untyped-def]
    driver, _worker = engine
    driver.send(p.Hello(protocol_version=p.PROTOCOL_VERSION + 1))
    error = driver.wait_for(p.HandshakeError)
    assert "protocol" in error.reason


def test_level_up_and_eval_events(hero) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    save, config = hero
    config = replace(config, game=replace(config.game, xp_per_level=5, eval_every=4, max_steps=12))
    server = EngineServer()
    worker = Worker(save, config, server)
    worker.start()
    ui_end, engine_end = Pipe()
    server.attach(engine_end)
    ui_end.send(p.Hello())
    worker.run()  # runs to max_steps, then saves and stops
    levels = []
    evals = []
    while ui_end.poll(0.5):
        event = ui_end.recv()
        levels += [event] if isinstance(event, p.LevelledUp) else []
        evals += [event] if isinstance(event, p.EvalCompleted) else []
    assert [e.level for e in levels] == [1, 2]
    assert [e.step for e in evals] == [4, 8, 12]
    assert all(0.0 <= e.accuracy <= 1.0 and e.val_loss > 0 for e in evals)


def test_eval_on_demand(engine) -> None:  # type: ignore[no-untyped-def]
    driver, worker = engine
    driver.send(p.Hello())
    driver.wait_for(p.StepCompleted)
    driver.send(p.RunEval())
    done = driver.wait_for(p.EvalCompleted)
    assert done.skill is not None and done.skill.id == "bin" and done.problems == 4
    assert worker.ledger.evals.all()[-1]["step"] == done.step
