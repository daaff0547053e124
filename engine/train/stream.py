"""The training stream: an endless, seeded sequence of rendered examples.

Its whole state is one integer, ``position`` (the index of the next example), plus the
active quest's row count when there is one, so a checkpoint resumes the data exactly
where it stopped. While a quest is active, each example is a quest row with
probability ``quest.share`` (decided by a seeded coin per position) and a skill
example otherwise: the rehearsal that keeps DIO from forgetting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.train.chat import ChatRenderer, Rendered
from skills.base import Skill

REDRAWS = 16
REDRAW_STRIDE = 1 << 40  # far from every index the stream itself uses


@dataclass(frozen=True)
class Source:
    skill: Skill
    level: int
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.skill.id.upper()} L{self.level}"


@dataclass(frozen=True)
class RowsSource:
    """Rendered rows drawn at random (a seeded pick per position): a finished quest
    rehearsed by a later campaign phase."""

    name: str
    rows: tuple[Rendered, ...]
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"Quest {self.name}"


AnySource = Source | RowsSource


class QuestCursor(Protocol):
    share: float  # of examples while the quest lasts
    seen: int  # quest rows taken so far (all epochs)

    @property
    def label(self) -> str: ...

    @property
    def finished(self) -> bool: ...

    def example(self, k: int) -> Rendered: ...


class SkillStream:
    def __init__(
        self,
        sources: Sequence[AnySource],
        renderer: ChatRenderer,
        seed: int,
        position: int = 0,
        max_tokens: int | None = None,
    ) -> None:
        if not sources:
            raise ValueError("the stream needs at least one source")
        self._sources = list(sources)
        self.renderer = renderer
        self.seed = seed
        self.position = position
        self.max_tokens = max_tokens  # the row length: a longer example is never cut
        self.redrawn = 0  # examples drawn again because they were longer than a row
        self.quest: QuestCursor | None = None
        self._peeked: tuple[tuple[int, int, bool], Rendered] | None = None

    @property
    def sources(self) -> list[AnySource]:
        return self._sources

    @sources.setter
    def sources(self, sources: Sequence[AnySource]) -> None:
        """A new mix (a level-up, a campaign phase): an example peeked from the old mix is
        dropped, so the next one comes from the new mix, as it does after a resume."""
        if not sources:
            raise ValueError("the stream needs at least one source")
        self._sources = list(sources)
        self._peeked = None

    @property
    def label(self) -> str:
        """The main sources (rehearsal of lower levels is implied)."""
        top: dict[str, int] = {}
        for s in self.sources:
            if isinstance(s, Source):
                top[s.skill.id] = max(top.get(s.skill.id, 0), s.level)
        skills = " + ".join(f"{sid.upper()} L{level}" for sid, level in top.items())
        if self.quest is not None and not self.quest.finished:
            return f"{self.quest.label} + {skills}"
        return skills

    def _source_for(self, index: int) -> AnySource:
        if len(self.sources) == 1:
            return self.sources[0]
        rng = random.Random(f"stream/{self.seed}/{index}")
        return rng.choices(self.sources, weights=[s.weight for s in self.sources])[0]

    def _render(self, index: int) -> Rendered:
        source = self._source_for(index)
        if isinstance(source, RowsSource):  # rows were checked to fit when they were chosen
            pick = random.Random(f"rows/{self.seed}/{index}").randrange(len(source.rows))
            return source.rows[pick]
        base = index + self.seed * 1_000_003
        for attempt in range(REDRAWS):
            # Rows are sized to the longest sampled example of every level (train/fit.py);
            # a rarer, longer one is replaced by another problem of the same level (a
            # deterministic choice: a resumed run draws the same) rather than cut.
            problem = source.skill.generate(source.level, base + attempt * REDRAW_STRIDE)
            example = self.renderer.render(problem.training_messages())
            if self.max_tokens is None or len(example) <= self.max_tokens:
                return example
            self.redrawn += 1
        raise ValueError(
            f"{source.label}: {REDRAWS} problems in a row are longer than a row of "
            f"{self.max_tokens} tokens (raise train.seq_len)"
        )

    def _quest_turn(self, index: int) -> bool:
        quest = self.quest
        if quest is None or quest.finished:
            return False
        return random.Random(f"quest-turn/{self.seed}/{index}").random() < quest.share

    def peek(self) -> Rendered:
        from_quest = self._quest_turn(self.position)
        key = (self.position, self.quest.seen if self.quest else -1, from_quest)
        if self._peeked is None or self._peeked[0] != key:
            if from_quest:
                assert self.quest is not None
                example = self.quest.example(self.quest.seen)
            else:
                example = self._render(self.position)
            self._peeked = (key, example)
        return self._peeked[1]

    def next(self) -> Rendered:
        example = self.peek()
        assert self._peeked is not None
        if self._peeked[0][2] and self.quest is not None:
            self.quest.seen += 1
        self.position += 1
        return example
