"""train.compile: training steps go through a torch.compile'd model body and train exactly
as the eager steps do; the model itself stays eager (evals and the Oracle generate with it)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.bench.speed import examples
from engine.model.fused import fuse_rms_norms, fused_norms
from engine.protocol.config import TrainConfig
from engine.train.chat import ChatRenderer
from engine.train.packing import ListSource, pack_rows
from engine.train.trainer import Trainer

pytestmark = pytest.mark.slow  # the first compile takes about a minute on 2 cores


def test_compiled_steps_train_like_eager_ones(hatchling_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa")
    eager_model = copy.deepcopy(model)
    # the compiled one with the hand-written RMSNorm (as load_hero gives it), the eager one
    # with the model's own
    assert fuse_rms_norms(model) == fused_norms(model) > 0 and fused_norms(eager_model) == 0
    # fp32: compiled and eager bf16 round at different points, so they would differ by more
    cfg = TrainConfig(micro_batch=4, seq_len=128, warmup_steps=0, schedule="constant", precision="fp32")
    source = ListSource(examples(ChatRenderer(tokenizer), 120, seed=1, seq_len=128))
    batches = [pack_rows(source, 4, 128, tokenizer.pad_token_id) for _ in range(3)]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = Trainer(model, replace(cfg, compile=True), torch.device("cpu"))
    eager = Trainer(eager_model, cfg, torch.device("cpu"))
    assert compiled.body is not None and eager.body is None
    for batch in batches:
        ours, reference = compiled.step([batch]), eager.step([batch])
        assert ours.loss == pytest.approx(reference.loss, rel=1e-4)
        assert ours.grad_norm == pytest.approx(reference.grad_norm, rel=1e-3)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it really compiled
    # The module is untouched: generate() (evals, the Oracle) runs it eagerly.
    assert not isinstance(model.get_decoder(), torch._dynamo.eval_frame.OptimizedModule)
    # AdamW moves a weight up to ~lr a step whatever its gradient's size, so rounding-level
    # gradient differences on near-zero gradients show up at that scale: 5% of the most
    # any weight could have moved (1e-4 flat failed by a hair on a faster CPU, 2026-11-25)
    bound = 0.05 * cfg.lr * len(batches)
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=bound), (a - b).abs().max()


def test_compiled_steps_attend_segments_outside_the_graph(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With segments (engine/model/segments.py), the compiled body leaves the segment
    attention to eager code (its shapes change every batch) and trains as the eager
    masked pass does, without a recompile per batch."""
    from engine.model import segments

    monkeypatch.setattr(segments, "PAYS_FROM", 0)  # segments at every batch, so the test is small
    tokenizer = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa")
    masked_model = copy.deepcopy(model)
    assert segments.switch_to_segments(model)
    cfg = TrainConfig(micro_batch=2, seq_len=256, warmup_steps=0, schedule="constant", precision="fp32")
    source = ListSource(examples(ChatRenderer(tokenizer), 100, seed=2, seq_len=256))
    batches = [pack_rows(source, 2, 256, tokenizer.pad_token_id) for _ in range(3)]
    calls = 0
    real = segments._attend_segments
    # the real one is kept out of dynamo's graph (the counting stand-in below is too)
    assert getattr(real, "_torchdynamo_disable", False)

    def counting(*args: object) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(segments, "_attend_segments", torch.compiler.disable(counting))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = Trainer(model, replace(cfg, compile=True), torch.device("cpu"))
    masked = Trainer(masked_model, cfg, torch.device("cpu"))
    for batch in batches:
        ours, reference = compiled.step([batch]), masked.step([batch])
        assert ours.loss == pytest.approx(reference.loss, rel=1e-4)
        assert ours.grad_norm == pytest.approx(reference.grad_norm, rel=1e-3)
    assert calls == 3 * model.config.num_hidden_layers  # each layer, each batch, in eager code
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    # a graph for each stretch between attention calls, and no more for the later batches
    torch._dynamo.utils.counters.clear()
    compiled.step([batches[0]])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 0
