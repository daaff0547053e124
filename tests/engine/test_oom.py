"""Out of memory does not end the run (faked on CPU): the step is retried with halved
micro-batches on the same rows, the effective batch and the gradient are kept, and the
engine keeps the smaller split afterwards."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import torch

from engine.protocol.config import TrainConfig
from engine.run.server import EngineServer
from engine.run.worker import Worker
from engine.train.packing import ListSource, pack_rows
from engine.train.trainer import Trainer


class FakeOOM(torch.nn.Module):
    """The hatchling, but a forward pass over more than ``limit`` rows runs out of memory."""

    def __init__(self, model: Any, limit: int) -> None:
        super().__init__()
        self.inner = model
        self.limit = limit
        self.ooms = 0

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        if input_ids.size(0) > self.limit:
            self.ooms += 1
            raise torch.OutOfMemoryError("CUDA out of memory (faked)")
        return self.inner(input_ids=input_ids, **kwargs)


def batches(worker: Worker, rows: int, count: int) -> list[Any]:
    pad = worker.hero.tokenizer.pad_token_id
    examples = [worker.stream.next() for _ in range(rows * count * 4)]
    source = ListSource(examples)
    return [pack_rows(source, rows, worker.config.train.seq_len, pad) for _ in range(count)]


def test_trainer_halves_micro_batches_and_keeps_the_gradient(hero) -> None:  # type: ignore[no-untyped-def]
    save, config = hero
    worker = Worker(save, config, EngineServer())
    worker.start()
    model = worker.hero.model
    reference = copy.deepcopy(model)
    micro = batches(worker, rows=4, count=2)
    # fp32: halved micro-batches give the same gradient up to fp32 rounding; bf16 autocast
    # (the default on a CPU with bf16 units) rounds the smaller matmuls differently
    cfg = TrainConfig(
        micro_batch=4, grad_accum=2, seq_len=config.train.seq_len, warmup_steps=0, precision="fp32"
    )
    faked = FakeOOM(model, limit=1)
    result = Trainer(faked, cfg, torch.device("cpu")).step(micro)
    expected = Trainer(reference, cfg, torch.device("cpu")).step(micro)
    assert result.oom_splits == 2 and faked.ooms == 2  # 4 rows -> 2 -> 1
    assert result.loss == pytest.approx(expected.loss, rel=1e-5)
    assert result.tokens == expected.tokens and result.target_tokens == expected.target_tokens
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        # the same update (Adam divides by |grad|: a gradient that rounds near zero moves
        # its weight by up to lr·1e-2, so the bound is that, not float epsilon)
        assert torch.allclose(a, b, atol=cfg.lr * 1e-2), (name, float((a - b).abs().max()))


def test_one_row_that_does_not_fit_is_a_clear_error(hero) -> None:  # type: ignore[no-untyped-def]
    save, config = hero
    worker = Worker(save, config, EngineServer())
    worker.start()
    micro = batches(worker, rows=1, count=1)
    trainer = Trainer(FakeOOM(worker.hero.model, limit=0), config.train, torch.device("cpu"))
    with pytest.raises(MemoryError, match="one packed row per micro-batch"):
        trainer.step(micro)


def test_engine_keeps_the_effective_batch_and_says_so(hero) -> None:  # type: ignore[no-untyped-def]
    save, config = hero
    config = replace(config, train=replace(config.train, micro_batch=4, grad_accum=1))
    worker = Worker(save, config, EngineServer())
    worker.start()
    worker.trainer.model = FakeOOM(worker.hero.model, limit=2)
    worker._train_step()
    assert (worker.micro_batch, worker.grad_accum) == (2, 2)  # 4 rows per step, as configured
    worker._train_step()  # the next step packs 2 rows per pass and does not run out
    assert worker.trainer.model.ooms == 1
    assert any("Out of memory" in line and "2 × 2" in line for line in worker.report.log_lines)
    loot = worker.take_loot("manual")
    worker.ledger.close()
    resumed = Worker(save, config, EngineServer())
    resumed.start()
    assert (resumed.micro_batch, resumed.grad_accum) == (2, 2)  # the split survives a restart
    assert loot.step == 2
