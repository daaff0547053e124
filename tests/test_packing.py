"""Packing puts several examples in a row without attention across their boundaries:
each example's logits are the same packed as alone (checked on the installed stack)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.chat import ChatRenderer
from engine.packing import IGNORE, ListSource, pack_rows
from engine.stream import SkillStream, Source
from engine.trainer import packed_logits
from skills.registry import get_skill


def test_packed_logits_match_unpacked(hatchling_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa").eval()
    renderer = ChatRenderer(tok)
    skill = get_skill("ari")
    examples = [renderer.render(skill.generate(3, i).training_messages()) for i in range(5)]
    batch = pack_rows(ListSource(examples), rows=None, seq_len=128, pad_id=tok.pad_token_id)
    assert batch.input_ids.size(0) == 1 and batch.examples == 5  # all in one row
    with torch.no_grad():
        packed = packed_logits(model, batch.input_ids, batch.position_ids)[0]
        offset = 0
        for example in examples:
            alone = model(input_ids=torch.tensor([example.input_ids])).logits[0]
            n = len(example)
            torch.testing.assert_close(packed[offset : offset + n], alone, atol=1e-4, rtol=1e-4)
            offset += n


def test_targets_are_shifted_assistant_tokens(hatchling_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    renderer = ChatRenderer(tok)
    example = renderer.render(get_skill("ari").generate(1, 0).training_messages())
    batch = pack_rows(ListSource([example, example]), rows=None, seq_len=64, pad_id=tok.pad_token_id)
    ids, tgt, pos = batch.input_ids[0], batch.targets[0], batch.position_ids[0]
    n = len(example)
    for t in range(2 * n - 1):
        if tgt[t] != IGNORE:
            assert tgt[t] == ids[t + 1]
            assert example.trainable[(t + 1) % n]
    assert tgt[n - 1] == IGNORE  # the last token of one example never predicts the next one
    assert pos[n] == 0 and pos[2 * n] == 0  # positions restart for the 2nd example and padding
    trained = tok.decode([int(t) for t in tgt[:n] if t != IGNORE])
    assert trained == f"{get_skill('ari').generate(1, 0).answer}<|im_end|>"


def test_stream_resumes_at_its_position(hatchling_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    renderer = ChatRenderer(tok)
    a = SkillStream([Source(get_skill("ari"), 2)], renderer, seed=7)
    first = [a.next().input_ids for _ in range(10)]
    b = SkillStream([Source(get_skill("ari"), 2)], renderer, seed=7, position=5)
    assert [b.next().input_ids for _ in range(5)] == first[5:]
    c = SkillStream([Source(get_skill("ari"), 2)], renderer, seed=8)
    assert [c.next().input_ids for _ in range(10)] != first
