"""GameState folds engine events into what the screens show: pure Python, no terminal."""

from __future__ import annotations

import dataclasses

from engine.protocol import messages as p
from tests.tui.conftest import snapshot
from tui.messages import LinkLost, LinkWaiting
from tui.state import GameState

QUEST = p.QuestInfo(name="greet.jsonl", state="active", priority="normal", rows=10, epochs=2, seen=3)


def skill(skill_id: str, level: int = 1, evals: tuple[float, ...] = ()) -> p.SkillInfo:
    return p.SkillInfo(skill_id, skill_id.upper(), "*", "red", level, 5, 0.8, 3, evals, ())


def step(n: int, loss: float = 1.0, quest: p.QuestInfo | None = None) -> p.StepCompleted:
    stats = p.HeroStats(step=n, level=n // 1000, train_loss=loss)
    return p.StepCompleted(n, 1, loss, loss, 1e-3, 0.5, 100.0, stats, masked_fraction=0.6, quest=quest)


def test_the_status_word_follows_the_link_and_the_engine() -> None:
    state = GameState()
    assert state.status_word == "WAKING UP"
    state.apply(LinkWaiting(3.0))
    assert state.status_word == "WAKING UP" and state.waited == 3.0
    state.apply(snapshot())
    assert state.status_word == "TRAINING" and state.link == "connected"
    state.pause_requested = True
    assert state.status_word == "PAUSING…"
    state.apply(p.Paused(step=1500))
    assert state.status_word == "PAUSED" and not state.pause_requested
    state.apply(p.Resumed(step=1500))
    assert state.status_word == "TRAINING"
    state.apply(LinkLost("connection reset"))
    assert state.status_word == "ENGINE DOWN" and state.error == "connection reset"


def test_a_snapshot_replaces_the_state_and_keeps_the_log() -> None:
    state = GameState()
    state.apply(p.LogLine("before"))
    state.apply(step(7))
    state.apply(snapshot(quests=(QUEST,), skills=(skill("bin"),)))
    assert list(state.train_losses) == [(1499, 1.3), (1500, 1.25)]  # the chart is the engine's
    assert list(state.log) == ["before", "DIO wakes"]
    assert state.stats.step == 1500 and state.hero == "dio" and state.active_quest == QUEST


def test_steps_move_the_chart_the_damage_and_the_active_quest() -> None:
    state = GameState()
    state.apply(snapshot(quests=(QUEST,)))
    state.apply(step(1501, 0.9, dataclasses.replace(QUEST, seen=4)))
    assert state.train_losses[-1] == (1501, 0.9) and state.last_damage == 0.9
    assert state.stats.step == 1501 and state.masked_fraction == 0.6
    assert state.active_quest is not None and state.active_quest.seen == 4


def test_an_fp16_overflow_step_has_no_gradient_norm_to_chart() -> None:
    state = GameState()
    state.apply(snapshot())
    state.apply(step(1501))  # grad norm 0.5
    state.apply(dataclasses.replace(step(1502), grad_norm=float("inf")))  # skipped: the scale is found
    assert list(state.grad_history)[-1] == (1501, 0.5) and state.grad_norm == 0.5
    assert state.train_losses[-1][0] == 1502  # the step itself counts (its loss is real)


def test_a_finished_quest_pays_its_gold_once() -> None:
    state = GameState()
    state.apply(snapshot(quests=(QUEST,)))
    done = dataclasses.replace(QUEST, state="done", seen=20)
    state.apply(p.QuestCompleted(done, gold=100, loot="step-000020"))
    assert state.stats.gold == 100 and state.quests == (done,) and state.active_quest is None


def test_evals_add_one_val_point_per_step_and_keep_the_skill_order() -> None:
    state = GameState()
    state.apply(snapshot(skills=(skill("bin"), skill("sy"))))
    state.apply(p.EvalCompleted(1600, 1.1, 0.5, 10, skill("sy", evals=(0.5,))))
    state.apply(p.EvalCompleted(1600, 1.1, 0.9, 10, skill("bin", 2)))
    assert [v for v in state.val_losses if v[0] == 1600] == [(1600, 1.1)]
    assert [s.id for s in state.skills] == ["bin", "sy"]
    assert state.skills[0].level == 2 and state.skills[1].evals == (0.5,)


def test_loot_a_stop_and_a_lost_link_after_it() -> None:
    state = GameState()
    state.apply(snapshot())
    loot = p.LootInfo(1600, "step-001600", 0.0, "manual", 1.0, None, 1e-3, "BIN L1")
    state.apply(p.CheckpointSaved(loot))
    assert state.last_loot_step == 1600
    state.apply(p.Stopped(step=1600, last_loot_step=1600))
    state.apply(LinkLost("closed"))
    assert state.engine_state == "stopped" and state.error is None  # a stop is not a crash


def test_an_engine_failure_keeps_its_error_over_the_lost_link() -> None:
    state = GameState()
    state.apply(snapshot())
    state.apply(p.EngineFailed("RuntimeError: boom", "Traceback…"))
    state.apply(LinkLost("closed"))
    assert state.error == "RuntimeError: boom" and state.error_detail == "Traceback…"
    state.apply(p.HandshakeError("engine speaks protocol 1"))
    assert state.error == "engine speaks protocol 1"
