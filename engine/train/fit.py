"""Rows sized to the curriculum: no skill example is ever trained truncated.

A packed row holds whole examples only. Before training, every level the hero's skills
can reach is sampled with the hero's own tokenizer; the row length (``train.seq_len``)
must hold the longest example found. With ``seq_len = 0`` (the default) the rows are
sized from that measurement; a ``seq_len`` set by hand that is too short is refused with
the levels that do not fit and the length that would. The measurement is cached in the
save folder, keyed by the skill files and the tokenizer, so a restart costs nothing.

Sampling can miss a rare longer example, so the stream checks every example too and
draws another problem of the same level instead of cutting one (``SkillStream``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.protocol.config import SettingRefused, TrainConfig
from engine.train.chat import ChatRenderer
from skills.base import Skill

SAMPLES = 16  # problems per level
MARGIN = 1.05  # auto rows leave this much room over the longest sample
ROW_QUANTUM = 64  # auto rows are a multiple of this
MIN_AUTO_SEQ_LEN = 256
TOKENS_PER_MICRO_BATCH = 2048  # auto micro-batch: about this many tokens per pass
SPREAD = 7_919  # sample indices spread out (generation is seeded per index)


class RowsTooShort(SettingRefused):
    """train.seq_len cannot hold some skill level's examples (or, past_positions, the
    model cannot place that many tokens)."""


def past_positions(seq_len: int, positions: int | None) -> str | None:
    """Why rows of ``seq_len`` tokens cannot train a model with ``positions`` positions
    (its max_position_embeddings); None when they can or it does not say."""
    if not seq_len or not positions or seq_len <= positions:
        return None
    return (
        f"train.seq_len {seq_len:,} is past the model's {positions:,} positions "
        f"(max_position_embeddings): set it to 0 (automatic) or at most {positions}"
    )


@dataclass(frozen=True)
class LevelSize:
    skill: str
    level: int
    longest: int  # rendered training example, tokens
    longest_answer: int  # the reference answer alone, tokens


def measure(skills: list[Skill], renderer: ChatRenderer, samples: int = SAMPLES) -> list[LevelSize]:
    """The longest example and answer of every level of every skill (sampled)."""
    sizes = []
    for skill in skills:
        for level in range(1, skill.max_level + 1):
            longest = answer = 0
            for i in range(samples):
                problem = skill.generate(level, i * SPREAD, split="train")
                longest = max(longest, len(renderer.render(problem.training_messages())))
                answer = max(answer, len(renderer.tokenizer(problem.answer).input_ids))
            sizes.append(LevelSize(skill.id, level, longest, answer))
    return sizes


def fingerprint(skills: list[Skill], renderer: ChatRenderer, samples: int) -> str:
    """Changes when a skill's levels or the tokenizer change (the sizes would too)."""
    digest = hashlib.sha256(f"{samples}".encode())
    for skill in sorted(skills, key=lambda s: s.id):
        digest.update(json.dumps([skill.id, skill.spec.levels, skill.max_level], sort_keys=True).encode())
    probe = 'SY BIN Tiles: ["ex", "pert"] 0123456789 {"solutions": []} the quick brown fox'
    digest.update(json.dumps(renderer.tokenizer(probe).input_ids).encode())
    digest.update(str(len(renderer.tokenizer)).encode())
    return digest.hexdigest()[:16]


def cached_measure(
    skills: list[Skill], renderer: ChatRenderer, cache: Path | None, samples: int = SAMPLES
) -> list[LevelSize]:
    key = fingerprint(skills, renderer, samples)
    if cache is not None and cache.exists():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("key") == key:
                return [LevelSize(**row) for row in data["levels"]]
        except (ValueError, TypeError, KeyError, OSError):
            pass  # a broken cache is measured again
    sizes = measure(skills, renderer, samples)
    if cache is not None:
        try:
            rows = [s.__dict__ for s in sizes]
            cache.write_text(json.dumps({"key": key, "levels": rows}), encoding="utf-8")
        except OSError:
            pass  # a read-only save measures again next time
    return sizes


def auto_seq_len(sizes: list[LevelSize], max_positions: int | None = None) -> int:
    """Rows that hold the longest example of any level, with a little room, in whole
    multiples of 64 (never past what the model can attend to)."""
    longest = max((s.longest for s in sizes), default=0)
    length = max(MIN_AUTO_SEQ_LEN, math.ceil(longest * MARGIN / ROW_QUANTUM) * ROW_QUANTUM)
    return min(length, max_positions) if max_positions else length


def level_caps(sizes: list[LevelSize], seq_len: int) -> dict[str, int]:
    """Each skill's last level such that it and every level below fit ``seq_len`` (0: not
    even level 1 fits)."""
    caps: dict[str, int] = {}
    for size in sorted(sizes, key=lambda s: (s.skill, s.level)):
        if size.skill not in caps:
            caps[size.skill] = 0
        if caps[size.skill] == size.level - 1 and size.longest <= seq_len:
            caps[size.skill] = size.level
    return caps


def resolve_rows(train: TrainConfig, seq_len: int) -> TrainConfig:
    """``train`` with seq_len and micro_batch made concrete."""
    micro_batch = train.micro_batch or max(1, round(TOKENS_PER_MICRO_BATCH / seq_len))
    return replace(train, seq_len=seq_len, micro_batch=micro_batch)


def needed(sizes: list[LevelSize], skill_id: str, level: int) -> tuple[int, int]:
    """How long ``skill_id``'s examples at ``level`` run, and the seq_len that holds them."""
    longest = max(s.longest for s in sizes if s.skill == skill_id and s.level == level)
    return longest, auto_seq_len([s for s in sizes if s.skill == skill_id])


def too_short_message(sizes: list[LevelSize], skill_id: str, seq_len: int) -> str:
    longest, need = needed(sizes, skill_id, 1)
    return (
        f"rows of {seq_len} tokens (train.seq_len) cannot hold {skill_id.upper()} L1 examples "
        f"({longest} tokens): set train.seq_len to 0 (automatic) or at least {need}, "
        f"or leave {skill_id} out of game.skills"
    )


def capped_message(sizes: list[LevelSize], skill_id: str, cap: int, seq_len: int) -> str:
    longest, need = needed(sizes, skill_id, cap + 1)
    return (
        f"{skill_id.upper()} stops at L{cap}: L{cap + 1} examples run to {longest} tokens, over "
        f"rows of {seq_len} (train.seq_len). Set it to 0 (automatic) or {need} to climb further"
    )


def answer_overruns(sizes: list[LevelSize], budgets: dict[str, int]) -> list[LevelSize]:
    """Levels whose reference answers are longer than the skill's generation budget (its
    evals would cut DIO's answers)."""
    return [s for s in sizes if s.longest_answer > budgets.get(s.skill, 0)]


def sizes_json(sizes: list[LevelSize]) -> list[dict[str, Any]]:
    return [s.__dict__ for s in sizes]
