"""The training stream: an endless, seeded sequence of rendered examples.

Its whole state is one integer, ``position`` (the index of the next example), so a
checkpoint resumes the data exactly where it stopped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.chat import ChatRenderer, Rendered
from skills.base import Skill


@dataclass(frozen=True)
class Source:
    skill: Skill
    level: int
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.skill.id.upper()} L{self.level}"


class SkillStream:
    def __init__(self, sources: list[Source], renderer: ChatRenderer, seed: int, position: int = 0) -> None:
        if not sources:
            raise ValueError("the stream needs at least one source")
        self.sources = sources
        self.renderer = renderer
        self.seed = seed
        self.position = position
        self._peeked: tuple[int, Rendered] | None = None

    @property
    def label(self) -> str:
        """The main sources (rehearsal of lower levels is implied)."""
        top: dict[str, int] = {}
        for s in self.sources:
            top[s.skill.id] = max(top.get(s.skill.id, 0), s.level)
        return " + ".join(f"{sid.upper()} L{level}" for sid, level in top.items())

    def _source_for(self, index: int) -> Source:
        if len(self.sources) == 1:
            return self.sources[0]
        rng = random.Random(f"stream/{self.seed}/{index}")
        return rng.choices(self.sources, weights=[s.weight for s in self.sources])[0]

    def _render(self, index: int) -> Rendered:
        source = self._source_for(index)
        problem = source.skill.generate(source.level, index + self.seed * 1_000_003)
        return self.renderer.render(problem.training_messages())

    def peek(self) -> Rendered:
        if self._peeked is None or self._peeked[0] != self.position:
            self._peeked = (self.position, self._render(self.position))
        return self._peeked[1]

    def next(self) -> Rendered:
        example = self.peek()
        self.position += 1
        return example
