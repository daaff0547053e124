"""What every skill is: a deterministic problem generator per (level, index) and a verifier."""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from skills.spec import SkillSpec

SPLITS = ("train", "eval")

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Problem:
    skill: str
    level: int
    index: int
    split: str
    prompt: str
    answer: str
    system: str | None = None
    key: str = ""  # JSON the verifier needs (operands, the puzzle…); opaque to others

    def messages(self) -> list[dict[str, str]]:
        """The conversation up to (not including) DIO's answer."""
        turns = [{"role": "system", "content": self.system}] if self.system else []
        return [*turns, {"role": "user", "content": self.prompt}]

    def training_messages(self) -> list[dict[str, str]]:
        return [*self.messages(), {"role": "assistant", "content": self.answer}]

    def record(self) -> dict[str, Any]:
        """The JSON row `realm skills sample --json` prints (and `score` reads back)."""
        return asdict(self)


def problem_rng(skill_id: str, level: int, index: int, split: str) -> random.Random:
    """A generator private to one problem. Seeding from a string is stable across
    processes (unlike ``hash()``), and the split is part of the seed so the train and
    eval streams never share a seed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if level < 1 or index < 0:
        raise ValueError(f"level must be >= 1 and index >= 0 (got {level}, {index})")
    return random.Random(f"{skill_id}/{split}/{level}/{index}")


def strip_thinking(response: str) -> str:
    """Drop Qwen3-style ``<think>…</think>`` blocks (and a dangling open one)."""
    text = _THINK.sub("", response)
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.strip()


class Skill(ABC):
    """A skill generates problems and scores answers (0.0 to 1.0). Its levels, gate
    threshold and eval size come from its YAML spec."""

    def __init__(self, spec: SkillSpec) -> None:
        self.spec = spec

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_level(self) -> int:
        return self.spec.max_level

    @abstractmethod
    def generate(self, level: int, index: int, split: str = "train") -> Problem: ...

    @abstractmethod
    def score(self, problem: Problem, response: str) -> float: ...

    def readable(self, problem: Problem, response: str) -> bool:
        """Whether the verifier could read an answer at all (the run grade's format
        score). By default: it earned some credit; skills with a format override it."""
        return self.score(problem, response) > 0

    def eval_set(self, level: int, size: int | None = None) -> list[Problem]:
        """The static eval set of a level: the same problems every time."""
        count = self.spec.eval_size if size is None else size
        return [self.generate(level, index, split="eval") for index in range(count)]

    def problem_from_record(self, record: dict[str, Any]) -> Problem:
        """A problem from a row of `realm skills sample --json`, or a skill's reference
        eval record (overridden by skills that import foreign formats)."""
        if record.get("key") is not None and "prompt" in record and "answer" in record:
            return Problem(
                skill=self.id,
                level=int(record.get("level", 1)),
                index=int(record.get("index", 0)),
                split=str(record.get("split", "eval")),
                prompt=record["prompt"],
                answer=record["answer"],
                system=record.get("system"),
                key=record["key"],
            )
        raise ValueError(f"not a {self.id} problem record (keys: {sorted(record)})")
