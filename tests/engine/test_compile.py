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
from engine.protocol.config import TrainConfig
from engine.train.chat import ChatRenderer
from engine.train.packing import ListSource, pack_rows
from engine.train.trainer import Trainer

pytestmark = pytest.mark.slow  # the first compile takes about a minute on 2 cores


def test_compiled_steps_train_like_eager_ones(hatchling_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(hatchling_dir)
    model = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa")
    eager_model = copy.deepcopy(model)
    cfg = TrainConfig(micro_batch=4, seq_len=128, warmup_steps=0, schedule="constant")
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
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-4)
