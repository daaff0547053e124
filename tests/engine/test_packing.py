"""Packing puts several examples in a row without attention across their boundaries:
each example's logits are the same packed as alone (checked on the installed stack)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.train.chat import ChatRenderer
from engine.train.packing import IGNORE, ListSource, pack_rows
from engine.train.stream import SkillStream, Source
from engine.train.trainer import packed_logits
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
        _each_as_alone(model, packed, examples)


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


def test_lean_loss_equals_the_plain_loss_and_its_gradient(hatchling_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The chunked, target-only loss (the output layer never sees all logits at once)
    gives the same value and gradients as cross-entropy over the full logits."""
    import torch.nn.functional as F

    from engine.train import trainer

    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa")
    renderer = ChatRenderer(tok)
    skill = get_skill("bin")
    examples = [renderer.render(skill.generate(2, i).training_messages()) for i in range(24)]
    batch = pack_rows(ListSource(examples), rows=None, seq_len=128, pad_id=tok.pad_token_id)
    assert batch.target_tokens > 40
    monkeypatch.setattr(trainer, "CE_CHUNK", 16)  # several chunks
    lean = trainer.token_loss_sum(model, batch)
    lean.backward()
    lean_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = packed_logits(model, batch.input_ids, batch.position_ids)
    plain = F.cross_entropy(
        logits.view(-1, logits.size(-1)), batch.targets.view(-1), ignore_index=IGNORE, reduction="sum"
    )
    plain.backward()
    torch.testing.assert_close(lean, plain, atol=1e-3, rtol=1e-5)
    for a, p in zip(lean_grads, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, atol=1e-5, rtol=1e-4)


def _alone_vs_flattened(model: torch.nn.Module, examples: list, batch: dict) -> None:  # type: ignore[type-arg]
    """Each example's logits in a flattened batch equal its logits alone. use_cache=False as
    each peer trains (TRL sets it; the bench sets it for the Trainer peer): with a cache,
    transformers skips the block-diagonal mask and a flattened row attends across examples."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "completion_mask")}
    inputs["use_cache"] = False
    with torch.no_grad():
        flat = model(**inputs).logits[0]
        offset = _each_as_alone(model, flat, examples)
    assert offset == flat.size(0)  # nothing else in the row


def _each_as_alone(model: torch.nn.Module, row: torch.Tensor, examples: list) -> int:  # type: ignore[type-arg]
    """Each example's logits in ``row`` (one after another from its start) equal its logits
    alone; the position after the last example."""
    offset = 0
    for example in examples:
        alone = model(input_ids=torch.tensor([example.input_ids])).logits[0]
        n = len(example)
        torch.testing.assert_close(row[offset : offset + n], alone, atol=1e-4, rtol=1e-4)
        offset += n
    return offset


def test_the_peers_layouts_never_attend_across_examples(hatchling_dir: Path) -> None:
    """What `realm bench` compares us with packs the same way (docs/benchmarks.md): TRL's
    padding-free collator and transformers' DataCollatorWithFlattening."""
    trl = pytest.importorskip("trl.trainer.sft_trainer")
    from transformers import DataCollatorWithFlattening

    from engine.bench.peers import labelled

    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa").eval()
    renderer = ChatRenderer(tok)
    skill = get_skill("ari")
    examples = [renderer.render(skill.generate(3, i).training_messages()) for i in range(4)]
    rows = labelled(examples)  # what TRL's dataset preparation makes of completion_mask
    trl_batch = trl.DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    assert trl_batch["input_ids"].size(0) == 1 and "attention_mask" not in trl_batch  # one flat row
    _alone_vs_flattened(model, examples, trl_batch)
    _alone_vs_flattened(model, examples, DataCollatorWithFlattening()(rows))
