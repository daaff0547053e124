"""Finds every skill: the YAMLs shipped beside this file, plus a user folder
(``$REALM_SKILLS``, default ``~/.config/realm/skills``). Adding a skill is adding a
YAML (and its module); nothing in the engine or the game changes.

A user's skill that cannot load (its YAML, its module, or a first problem its own
verifier does not accept) is left out and named with the reason (``skill_problems``):
one half-written file must not stop the game, `realm skills` or every other command.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from skills.base import Problem, Skill
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


@dataclass(frozen=True)
class SkillProblem:
    """A user skill left out: its YAML and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"skill {self.path} left out: {self.reason}"


def tried(skill: Skill) -> Skill:
    """The skill, once its first problem is made and its own answer scores full marks (a
    generator or verifier that fails here would fail mid-training instead)."""
    problem = skill.generate(1, 0, "train")
    if not isinstance(problem, Problem):
        raise TypeError(f"generate() returned {type(problem).__name__}, not a Problem")
    score = skill.score(problem, problem.answer)
    if score != 1:
        raise ValueError(f"its own answer to level 1's first problem scores {score!r}, not 1")
    return skill


def why(exc: Exception, path: Path) -> str:
    """The reason in one line: our checks speak for themselves, the user's code by its
    exception's name (ModuleNotFoundError, ZeroDivisionError…)."""
    text = str(exc).removeprefix(f"{path}: ")
    return (
        text
        if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError)
        else f"{type(exc).__name__}: {text}"
    )


@cache
def _discover(folders: tuple[Path, ...]) -> tuple[tuple[Skill, ...], tuple[SkillProblem, ...]]:
    found: dict[str, Skill] = {}
    problems: list[SkillProblem] = []
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            if folder == BUILTIN:  # ours: a failure is a bug to see, not to skip
                spec = SkillSpec.load(path)
                found[spec.id] = load_skill(spec)
                continue
            try:
                spec = SkillSpec.load(path)
                found[spec.id] = tried(load_skill(spec))  # a user skill may replace a built-in one
            except Exception as exc:  # the user's own code: anything can be raised
                problems.append(SkillProblem(path, why(exc, path)))
    return tuple(found.values()), tuple(problems)


def all_skills() -> list[Skill]:
    return list(_discover((BUILTIN, user_folder()))[0])


def skill_problems() -> list[SkillProblem]:
    """The user's skills that could not load, with why."""
    return list(_discover((BUILTIN, user_folder()))[1])


def get_skill(skill_id: str) -> Skill:
    for skill in all_skills():
        if skill.id == skill_id.lower():
            return skill
    known = ", ".join(s.id for s in all_skills())
    raise KeyError(f"unknown skill {skill_id!r} (known: {known}){left_out(skill_id)}")


def left_out(skill_id: str) -> str:
    """'; skill …/ID.yaml left out: WHY' when the user's file of that name could not load."""
    return "".join(f"; {x}" for x in skill_problems() if x.path.stem == skill_id.lower())
