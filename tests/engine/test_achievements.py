"""Achievements are earned from the engine's own events, once each, kept in the save."""

from __future__ import annotations

import json
from pathlib import Path

from engine.game.achievements import ALL, AchievementBook
from engine.protocol import messages as p
from tests.conftest import make_hero, run_worker


def quest_done(i: int) -> p.QuestCompleted:
    info = p.QuestInfo(f"q{i}.jsonl", "done", "normal", 1, 1, 1, 1)
    return p.QuestCompleted(info, 100)


def retest(result: str) -> p.TaskUpdated:
    return p.TaskUpdated(p.TaskInfo(1, "retest", "re-test", "done", 3, 3, result, 0.0))


def test_rules_unlock_once_and_the_book_survives_a_restart(tmp_path: Path) -> None:
    path, step = tmp_path / "achievements.json", [7]
    book = AchievementBook(path, lambda: step[0])
    assert book.earned(retest("fixed 0 of 3")) == []  # nothing fixed, nothing earned
    assert book.earned(retest("fixed 2 of 3")) == ["sparring-fixed"]
    assert book.earned(retest("fixed 3 of 3")) == []  # once
    earned = [aid for i in range(10) for aid in book.earned(quest_done(i))]
    assert earned == ["first-quest", "quests-10"]
    step[0] = 2000
    assert book.earned(p.LevelledUp(level=2, step=2000)) == ["hero-level-1"]
    again = AchievementBook(path, lambda: 0)  # a new engine reads the file
    assert again.earned(quest_done(11)) == [] and again.quests_done == 11
    unlocked = {a.id: a.step for a in again.infos() if a.unlocked}
    assert unlocked == {"sparring-fixed": 7, "first-quest": 7, "quests-10": 7, "hero-level-1": 2000}
    assert len(again.infos()) == len(ALL)


def test_a_real_run_earns_its_first_achievements_and_a_crash_survived(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, eval_every=10)
    run_worker(save, config, max_steps=10)
    unlocked = json.loads(save.achievements.read_text())["unlocked"]
    assert {"first-loot", "first-eval"} <= set(unlocked) and unlocked["first-loot"]["step"] == 10
    status = json.loads(save.status.read_text())
    status["state"] = "training"  # as a killed engine leaves it
    save.status.write_text(json.dumps(status))
    worker = run_worker(save, config, max_steps=12)
    unlocked = json.loads(save.achievements.read_text())["unlocked"]
    assert "survived-crash" in unlocked and unlocked["first-loot"]["step"] == 10  # not earned twice
    assert any(a.id == "survived-crash" and a.unlocked for a in worker.achievements.infos())


def test_beating_the_base_model_needs_a_base_run_and_a_higher_trained_score() -> None:
    from engine.run.suite_work import beats_base

    loot = {"step-000200": {"score": 0.4}, "live@250": {"score": 0.3}}
    assert not beats_base(loot)  # no base run to beat yet
    assert not beats_base({**loot, "base": {"score": 0.4}})  # a tie is not a win
    assert beats_base({**loot, "BASE": {"score": 0.35}})  # the loot's 0.4 beats it
    assert not beats_base({"base": {"score": 0.1}})  # the base alone beats nothing
    assert "beat-base" in {a.id for a in ALL}
