"""`realm bench --estimate`: the memory estimate per mode, with no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.bench.speed import main as bench_main


def estimate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert bench_main(["--estimate", "--json", *args]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_bench_estimate(hatchling_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result: dict = estimate(capsys)  # type: ignore[type-arg]  # Qwen3-0.6B's published config
    assert result["full_gib"]["total"] > result["lora_gib"]["total"] > result["qlora_gib"]["total"]
    assert result["full_checkpointed_gib"]["activations"] < result["full_gib"]["activations"]
    local = estimate(capsys, "--model", str(hatchling_dir))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hatchling_dir)
    assert local["params"] == sum(p.numel() for p in model.parameters())  # counted from config.json alone


def test_bench_estimate_for_a_sharded_full_fine_tune(capsys: pytest.CaptureFixture[str]) -> None:
    """`realm bench --estimate --gpus 8`: rank 0's share of a full fine-tune under --fsdp,
    beside the one-GPU figures (which stay as they were)."""
    alone: dict = estimate(capsys)  # type: ignore[type-arg]
    shared: dict = estimate(capsys, "--shards", "8")  # type: ignore[type-arg]
    assert "full_fsdp_8_gib" not in alone and shared["full_gib"] == alone["full_gib"]
    share = shared["full_fsdp_8_gib"]
    assert share["optimizer"] == pytest.approx(alone["full_gib"]["optimizer"] / 8, abs=0.002)
    assert share["weights"] > alone["full_gib"]["weights"]  # rank 0's whole copy + its shard
    assert share["total"] < alone["full_gib"]["total"]
    assert shared["full_fsdp_8_checkpointed_gib"]["total"] < share["total"]
