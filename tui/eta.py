"""Time to the next goal, from the engine's recent pace (HeroStats.steps_per_minute):
the next hero level, and the earliest a skill's gate can open. Pure, so it is tested
without a terminal."""

from __future__ import annotations

from engine.protocol.messages import HeroStats, SkillInfo
from engine.protocol.names import duration


def level_eta(stats: HeroStats) -> str:
    """'L3 in 12m': the next hero level at the recent pace; '' while the pace is unknown."""
    if stats.steps_per_minute <= 0:
        return ""
    steps_left = stats.xp_per_level - stats.xp_into_level
    return f"L{stats.level + 1} in {duration(steps_left / stats.steps_per_minute * 60)}"


def evals_to_gate(skill: SkillInfo) -> int:
    """The fewest further evals that can open the gate: every eval in the window must pass,
    so the passes at the end of the history count and the rest must come."""
    trailing = 0
    for accuracy in reversed(skill.evals[-skill.gate_window :]):
        if accuracy < skill.threshold:
            break
        trailing += 1
    return skill.gate_window - trailing


def gate_eta(skill: SkillInfo, eval_every: int, steps_per_minute: float) -> str:
    """'at least 2 more evals ≥ 80% (~200 steps, ~4m)'; the steps and time only when the
    eval schedule and the pace are known."""
    if skill.level >= skill.max_level and skill.level in skill.mastered:
        return "mastered"
    needed = evals_to_gate(skill)
    text = f"at least {needed} more eval{'s' * (needed != 1)} ≥ {skill.threshold:.0%}"
    if eval_every > 0:
        steps = needed * eval_every
        text += f" (~{steps:,} steps"
        text += f", ~{duration(steps / steps_per_minute * 60)})" if steps_per_minute > 0 else ")"
    return text
