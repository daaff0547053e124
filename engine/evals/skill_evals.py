"""Evaluation: validation loss on fixed held-out examples, and accuracy by batched
greedy generation (KV cache, stopping at end of turn) scored by the skill's verifier."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.train.chat import ChatRenderer, Message
from engine.train.packing import ListSource, PackedBatch, pack_rows
from engine.train.trainer import token_loss_sum
from skills.base import Problem, Skill


def build_val_batch(
    renderer: ChatRenderer, problems: list[Problem], seq_len: int, pad_id: int
) -> PackedBatch:
    # Whole examples only (a rare one longer than a row is left out, never cut).
    rendered = [r for r in (renderer.render(p.training_messages()) for p in problems) if len(r) <= seq_len]
    return pack_rows(ListSource(rendered), rows=None, seq_len=seq_len, pad_id=pad_id)


@torch.no_grad()
def validation_loss(model: Any, batch: PackedBatch, device: torch.device) -> float:
    model.eval()
    loss = token_loss_sum(model, batch.to(device))
    return float(loss) / max(1, batch.target_tokens)


EVAL_BATCH = 32  # prompts per generate() call: one slice of an eval task


def generate_answers(
    model: Any,
    renderer: ChatRenderer,
    problems: list[Problem],
    device: torch.device,
    max_new_tokens: int,
    batch_size: int = EVAL_BATCH,
) -> list[str]:
    """Greedy answers to every problem."""
    answers: list[str] = []
    for batch in answer_batches(model, renderer, problems, device, max_new_tokens, batch_size):
        answers += batch
    return answers


@torch.no_grad()
def answer_batches(
    model: Any,
    renderer: ChatRenderer,
    problems: Sequence[Problem | Sequence[Message]],
    device: torch.device,
    max_new_tokens: int,
    batch_size: int = EVAL_BATCH,
) -> Iterator[list[str]]:
    """Greedy answers, ``batch_size`` prompts at a time (left-padded), one batch per
    ``next()``: the task board runs an eval a batch at a time. A problem is a skill
    problem or a conversation (an eval suite's question)."""
    tokenizer = renderer.tokenizer
    for start in range(0, len(problems), batch_size):
        model.eval()  # every batch: an Oracle answer may run between two of them
        chunk = problems[start : start + batch_size]
        prompts = [renderer.prompt_ids(p.messages() if isinstance(p, Problem) else list(p)) for p in chunk]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=renderer.stop_ids,
            pad_token_id=tokenizer.pad_token_id,
        )
        yield [tokenizer.decode(row, skip_special_tokens=True) for row in out[:, width:]]


@dataclass(frozen=True)
class SkillEval:
    accuracy: float
    problems: int
    sample: Problem | None
    sample_answer: str
    sample_correct: bool
    readable: float = 0.0  # share of answers the verifier could read (right or wrong)


def skill_accuracy(
    model: Any,
    renderer: ChatRenderer,
    skill: Skill,
    problems: list[Problem],
    device: torch.device,
) -> SkillEval:
    """Mean verifier score over a static eval set."""
    answers = generate_answers(model, renderer, problems, device, skill.spec.max_answer_tokens)
    return score_answers(skill, problems, answers)


def score_answers(skill: Skill, problems: list[Problem], answers: list[str]) -> SkillEval:
    """The first problem is the sample the Guild shows (the same one every time, so its
    answer shows progress)."""
    scores = [skill.score(p, a) for p, a in zip(problems, answers, strict=True)]
    readable = [s > 0 or skill.readable(p, a) for s, p, a in zip(scores, problems, answers, strict=True)]
    return SkillEval(
        accuracy=sum(scores) / len(scores) if scores else 0.0,
        problems=len(problems),
        sample=problems[0] if problems else None,
        sample_answer=answers[0] if answers else "",
        sample_correct=bool(scores and scores[0] >= 1.0),
        readable=sum(readable) / len(readable) if readable else 0.0,
    )
