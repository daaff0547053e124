"""`python -m engine.bench.profile` times the step Trainer.step runs: the same precision
(it once profiled fp32 while the engine trained in bf16 autocast)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.bench import profile
from engine.model.hero import has_bf16


def _args(model: Path, precision: str) -> argparse.Namespace:
    return argparse.Namespace(
        model=str(model), rows=2, seq_len=64, steps=1, compile=False, masked=False, unfused=False,
        malloc_default=True, precision=precision,
    )  # fmt: skip


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_the_forward_runs_in_the_precision_training_uses(
    hatchling_dir: Path, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    autocast_seen: list[bool] = []
    real = profile.mean_loss

    def watched(*args: Any) -> Any:
        autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return real(*args)

    monkeypatch.setattr(profile, "mean_loss", watched)
    result = profile.profile(_args(hatchling_dir, precision))
    bf16 = precision == "auto" and has_bf16(torch.device("cpu"))
    assert result["precision"] == ("bfloat16" if bf16 else "float32")
    assert autocast_seen and all(seen == bf16 for seen in autocast_seen), autocast_seen
    assert result["ms_per_step"] > 0
