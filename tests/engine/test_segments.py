"""sdpa_segments: each packed example attended on its own (engine/model/segments.py) gives
the masked SDPA pass's logits and gradients, leaves padding out, and is SDPA itself when
no plan comes (generate() in evals and the Oracle)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.bench.speed import examples
from engine.model import segments
from engine.model.hero import load_hero
from engine.train import trainer
from engine.train.chat import ChatRenderer
from engine.train.packing import ListSource, PackedBatch, pack_rows


def _models(folder: Path) -> tuple[Any, Any, Any]:
    """(tokenizer, a model on plain SDPA, the same weights on sdpa_segments)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    masked = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    segmented = copy.deepcopy(masked)
    assert segments.switch_to_segments(segmented)
    return tokenizer, masked, segmented


def _batch(tokenizer: Any, count: int, seq_len: int, rows: int | None = None) -> PackedBatch:
    pool = examples(ChatRenderer(tokenizer), count, seed=3, seq_len=seq_len)
    return pack_rows(ListSource(pool), rows, seq_len, tokenizer.pad_token_id)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls that really attend example by example."""
    calls: list[int] = []
    real = segments._attend_segments

    def counting(*args: Any) -> torch.Tensor:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(segments, "_attend_segments", counting)
    return calls


def test_the_plan_finds_each_example_and_leaves_padding_out() -> None:
    # row 0: examples of 3, 2 and 4 tokens, then 11 padding (positions restart, as pack_rows
    # writes them); row 1: one example of 20
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3, *range(11)], list(range(20))])
    assert segments.spans(positions, (9, 20)) == [(0, 3), (3, 2), (5, 4), (20, 20)]
    plan = segments.plan_segments(positions, (9, 20))
    # grouped by power of two (16, 32), each padded to its longest rounded up to 8 (4 → 8,
    # 20 → 24), not to the power of two
    assert [(b.examples, b.length) for b in plan.buckets] == [(3, 8), (1, 24)]
    assert sorted(plan.scatter.tolist()) == list(range(9)) + list(range(20, 40))  # no padding
    assert plan.score_cells == 3 * 8**2 + 24**2
    # without row lengths the padding is a segment of its own (attended, never joined)
    assert segments.spans(positions)[3] == (9, 11)


def test_the_plan_pays_for_long_rows_of_short_examples_only() -> None:
    short = torch.arange(32).repeat(2, 32)  # 2 rows × 1024, examples of 32 tokens
    assert segments.plan_segments(short).pays
    whole = torch.arange(1024).repeat(2, 1)  # one example fills each row
    assert not segments.plan_segments(whole).pays
    long_and_short = torch.cat([torch.arange(768), torch.arange(256)]).repeat(2, 1)  # cells ÷ 1.6
    assert not segments.plan_segments(long_and_short).pays
    halves = torch.arange(512).repeat(2, 2)  # cells ÷ 2: pays (at ÷ 2.4, 8 × 256, 7–10% faster)
    assert segments.plan_segments(halves).pays
    assert segments.plan_if_it_pays(halves) is not None and segments.plan_if_it_pays(whole) is None


def test_segments_give_the_masked_logits_and_gradients(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer, masked, segmented = _models(hatchling_dir)
    batch = _batch(tokenizer, 30, 256)  # rows until the pool is empty: the last one padded
    assert batch.input_ids.size(0) >= 2 and min(batch.row_tokens) < 256
    plan = segments.plan_segments(batch.position_ids, batch.row_tokens)
    assert len(plan.buckets) >= 2  # examples of several lengths
    calls = _spy(monkeypatch)
    ids, pos = batch.input_ids, batch.position_ids
    with torch.no_grad():
        want = masked(input_ids=ids, position_ids=pos, use_cache=False).logits
        got = segmented(input_ids=ids, position_ids=pos, use_cache=False, segments=plan).logits
    assert len(calls) == masked.config.num_hidden_layers
    for row, real in enumerate(batch.row_tokens):
        torch.testing.assert_close(got[row, :real], want[row, :real], atol=1e-4, rtol=1e-4)

    monkeypatch.setattr(segments, "PAYS_FROM", 0)  # the trainer's path, whatever the lengths
    for model in (masked, segmented):
        trainer.token_loss_sum(model, batch).backward()
    assert len(calls) == 2 * masked.config.num_hidden_layers
    for a, b in zip(masked.parameters(), segmented.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4)


def test_the_trainer_uses_segments_where_they_pay(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer, masked, segmented = _models(hatchling_dir)
    calls = _spy(monkeypatch)
    long_rows = _batch(tokenizer, 200, 1024, rows=2)
    with torch.no_grad():
        got = trainer.token_loss_sum(segmented, long_rows)
        want = trainer.token_loss_sum(masked, long_rows)
    assert calls  # 2 × 1024 of 30–80-token examples: segments pay
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-3)
    calls.clear()
    one_each = _batch(tokenizer, 4, 64, rows=4)  # one or two examples a row: the masked pass
    with torch.no_grad():
        trainer.token_loss_sum(segmented, one_each)
    assert not calls


def test_a_hero_trains_on_segments_and_generates_as_sdpa(hatchling_dir: Path) -> None:
    hero = load_hero(hatchling_dir, torch.device("cpu"), "test")
    assert hero.model.config._attn_implementation == segments.NAME
    plain = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa").eval()
    tokenizer = hero.tokenizer
    tokenizer.padding_side = "left"  # as evals batch their prompts
    prompts = ["<|im_start|>user\nBIN 1011<|im_end|>\n", "<|im_start|>user\nhi<|im_end|>\n"]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    assert int(inputs["attention_mask"].min()) == 0  # one prompt really is padded
    settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.no_grad():
        ours = hero.model.eval().generate(**inputs, **settings)
        theirs = plain.generate(**inputs, **settings)
    assert torch.equal(ours, theirs)


class _Layer(torch.nn.Module):
    """What the backends read of an attention module: whether it trains, its GQA groups."""

    num_key_value_groups = 2


def _qkv(rows: int, length: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    shapes = ((rows, 4, length, 64), (rows, 2, length, 64), (rows, 2, length, 64))
    return tuple(torch.randn(*s, generator=gen).bfloat16() for s in shapes)


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Causal SDPA of one example a row in ``dtype``, as [rows, q_len, heads, dim]."""
    out = torch.nn.functional.scaled_dot_product_attention(
        q.to(dtype), k.to(dtype), v.to(dtype), is_causal=True, enable_gqa=True
    )
    return out.transpose(1, 2).bfloat16()


@pytest.mark.parametrize("planned", [True, False], ids=["segments", "masked"])
def test_short_attention_under_cpu_bf16_autocast_runs_in_fp32(planned: bool) -> None:
    # torch's CPU flash-attention kernel is slower in bf16 than in fp32 below ~512 tokens
    # (docs/benchmarks.md), so under bf16 autocast it runs in fp32 there; longer, autocast decides
    layer = _Layer().train()
    for length, dtype in ((64, torch.float32), (segments.CPU_BF16_ATTENTION_FROM, torch.bfloat16)):
        q, k, v = _qkv(2, length)
        positions = torch.arange(length).repeat(2, 1)  # one example a row
        plan = segments.plan_segments(positions) if planned else None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = segments.segment_attention(layer, q, k, v, None, segments=plan, is_causal=True)
        assert out.dtype == torch.bfloat16
        assert torch.equal(out, _reference(q, k, v, dtype)), (length, dtype)
        other = torch.bfloat16 if dtype == torch.float32 else torch.float32
        assert not torch.equal(out, _reference(q, k, v, other))  # the dtypes are told apart


def test_fp32_attention_is_kept_where_nothing_is_bf16() -> None:
    q = torch.zeros(1, 4, 8, 64)
    assert not segments._upcast(q, 8)  # fp32, no autocast: nothing to change
    assert segments._upcast(q.bfloat16(), 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert segments._upcast(q, 8)
        assert not segments._upcast(q, segments.CPU_BF16_ATTENTION_FROM)
