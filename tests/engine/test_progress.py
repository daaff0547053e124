"""The hero's progression numbers: the pace of the ETAs and the time trained."""

from __future__ import annotations

import json

from engine.game.progress import Progress


def test_pace_and_time_trained_follow_the_steps_and_survive_loot() -> None:
    progress = Progress(xp_per_level=1000)
    assert progress.stats().steps_per_minute == 0.0  # unknown before a step
    for _ in range(200):
        progress.record_step(2.0, 100, seconds=0.5)
    stats = progress.stats()
    assert abs(stats.seconds_trained - 100.0) < 1e-6
    assert abs(stats.steps_per_minute - 120.0) < 1e-6
    for _ in range(300):  # the machine gets busy: the pace follows within a few hundred steps
        progress.record_step(2.0, 100, seconds=1.0)
    assert 60.0 <= progress.stats().steps_per_minute < 61.0
    again = Progress.from_dict(json.loads(json.dumps(progress.to_dict())), xp_per_level=1000)
    assert again.stats() == progress.stats()  # saved with loot, so a resumed hero keeps both


def test_a_run_with_max_steps_says_how_far_and_how_long_is_left() -> None:
    from engine.run.report import steps_left

    assert steps_left(120, 0, 0.5) == ""  # an idle run never ends
    assert steps_left(120, 1000, None) == "/1000"  # the pace is not known yet
    assert steps_left(120, 1000, 0.5) == "/1000 (~7m left)"  # 880 steps × 0.5 s
    assert steps_left(1000, 1000, 0.5) == "/1000"
