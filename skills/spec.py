"""A skill's YAML, validated: the single source of truth for its levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REQUIRED = ("id", "name", "max_level", "module", "levels")


@dataclass(frozen=True)
class SkillSpec:
    id: str
    name: str
    max_level: int
    module: str  # "package.module:ClassName"
    levels: dict[int, dict[str, Any]]
    icon: str = "✦"
    colour: str = "#9CA3AF"
    description: str = ""
    threshold: float = 0.80  # eval accuracy that counts as a pass
    eval_size: int = 50  # problems in a level's static eval set
    max_answer_tokens: int = 64  # generation budget for an answer
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.id.isidentifier() or self.id != self.id.lower():
            raise ValueError(f"skill id {self.id!r} must be a lowercase identifier")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"{self.id}: threshold must be in (0, 1]")
        if self.eval_size < 1 or self.max_answer_tokens < 1:
            raise ValueError(f"{self.id}: eval_size and max_answer_tokens must be >= 1")
        missing = [lvl for lvl in range(1, self.max_level + 1) if lvl not in self.levels]
        if missing:
            raise ValueError(f"{self.id}: the level table lacks levels {missing}")

    def params(self, level: int) -> dict[str, Any]:
        if level not in self.levels:
            raise ValueError(f"{self.id} has levels 1..{self.max_level}, not {level}")
        return self.levels[level]

    @classmethod
    def load(cls, path: Path) -> SkillSpec:
        """The spec, or ValueError naming the file and what is wrong with it."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise ValueError(
                f"{path}: not a readable YAML file{line}: {getattr(exc, 'problem', None) or exc}"
            ) from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a skill YAML must be a mapping")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("levels", "source")}
        extra = set(data) - known - {"levels"}
        if extra:
            raise ValueError(f"{path}: unknown keys {sorted(extra)}")
        fields = {k: v for k, v in data.items() if k in known}
        wrong = [k for k, v in fields.items() if not isinstance(v, FIELD_TYPES[k]) or isinstance(v, bool)]
        if wrong:
            raise ValueError(f"{path}: {', '.join(f'{k} must be {FIELD_NAMES[k]}' for k in wrong)}")
        return cls(**fields, levels=read_levels(path, data["levels"]), source=path)


FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "name": str,
    "icon": str,
    "colour": str,
    "description": str,
    "module": str,
    "max_level": int,
    "threshold": (int, float),
    "eval_size": int,
    "max_answer_tokens": int,
}
FIELD_NAMES = {
    k: "a number" if v == (int, float) else "a whole number" if v is int else "text"
    for k, v in FIELD_TYPES.items()
}


def read_levels(path: Path, levels: Any) -> dict[int, dict[str, Any]]:
    """``{1: {params}, 2: {...}}``: each level's parameters for the generator."""
    if not isinstance(levels, dict):
        raise ValueError(f"{path}: levels must map each level number to its parameters")
    table: dict[int, dict[str, Any]] = {}
    for key, params in levels.items():
        if isinstance(key, bool) or not str(key).strip().isdigit():
            raise ValueError(f"{path}: levels: {key!r} is not a level number")
        if not isinstance(params, dict):
            raise ValueError(f"{path}: level {key}'s parameters must be a mapping ({{name: value}})")
        table[int(key)] = dict(params)
    return table
