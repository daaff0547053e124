"""Finds every skill: the YAMLs shipped beside this file, plus a user folder
(``$REALM_SKILLS``, default ``~/.config/realm/skills``). Adding a skill is adding a
YAML (and its module); nothing in the engine or the game changes."""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache
from pathlib import Path

from skills.base import Skill
from skills.spec import SkillSpec

BUILTIN = Path(__file__).resolve().parent
USER_ENV = "REALM_SKILLS"


def user_folder() -> Path:
    return Path(os.environ.get(USER_ENV, Path.home() / ".config" / "realm" / "skills")).expanduser()


def load_skill(spec: SkillSpec) -> Skill:
    module_name, _, class_name = spec.module.partition(":")
    if spec.source is not None and str(spec.source.parent) not in sys.path and spec.source.parent != BUILTIN:
        sys.path.append(str(spec.source.parent))  # a user skill's module sits beside its YAML
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Skill)):
        raise TypeError(f"{spec.module} is not a Skill class")
    return cls(spec)


@cache
def _discover(folders: tuple[Path, ...]) -> tuple[Skill, ...]:
    found: dict[str, Skill] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            spec = SkillSpec.load(path)
            found[spec.id] = load_skill(spec)  # a user skill may replace a built-in one
    return tuple(found.values())


def all_skills() -> list[Skill]:
    return list(_discover((BUILTIN, user_folder())))


def get_skill(skill_id: str) -> Skill:
    for skill in all_skills():
        if skill.id == skill_id.lower():
            return skill
    known = ", ".join(s.id for s in all_skills())
    raise KeyError(f"unknown skill {skill_id!r} (known: {known})")
