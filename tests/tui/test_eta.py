"""Time to the next goal: the hero's next level and the earliest a skill gate opens."""

from __future__ import annotations

from dataclasses import replace

from engine.protocol import messages as p
from engine.protocol.names import duration
from tests.tui.test_app import skill_info
from tui.eta import evals_to_gate, gate_eta, level_eta


def test_durations_read_short() -> None:
    assert [duration(s) for s in (5, 720, 3 * 3600 + 300, 50 * 3600)] == ["5s", "12m", "3h05m", "2d02h"]


def test_the_next_level_at_the_recent_pace() -> None:
    stats = p.HeroStats(step=1_400, level=1, xp_per_level=1000, steps_per_minute=50.0)
    assert level_eta(stats) == "L2 in 12m"  # 600 steps at 50 a minute
    assert level_eta(replace(stats, steps_per_minute=0.0)) == ""  # the pace is not known yet


def test_the_gate_needs_every_eval_of_its_window() -> None:
    assert evals_to_gate(skill_info(evals=())) == 3
    assert evals_to_gate(skill_info(evals=(0.9, 0.5))) == 3  # the 50% must leave the window
    assert evals_to_gate(skill_info(evals=(0.5, 0.9))) == 2
    assert evals_to_gate(skill_info(evals=(0.85, 0.9, 0.81))) == 0
    info = skill_info(evals=(0.5, 0.9))
    assert gate_eta(info, 100, 50.0) == "at least 2 more evals ≥ 80% (~200 steps, ~4m)"
    assert gate_eta(info, 100, 0.0) == "at least 2 more evals ≥ 80% (~200 steps)"
    assert gate_eta(info, 0, 50.0) == "at least 2 more evals ≥ 80%"
