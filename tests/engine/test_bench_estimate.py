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
