"""Finds every skill by id."""

from __future__ import annotations

from skills.arith import Arith
from skills.base import Skill


def all_skills() -> list[Skill]:
    return [Arith()]


def get_skill(skill_id: str) -> Skill:
    for skill in all_skills():
        if skill.id == skill_id.lower():
            return skill
    known = ", ".join(s.id for s in all_skills())
    raise KeyError(f"unknown skill {skill_id!r} (known: {known})")
