"""engine/bench/peers.py: how the comparison treats peers that cannot run or that fail.
(tests/process/test_bench_speed.py runs the real thing.)"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import torch

from engine.bench import peers


def _args() -> argparse.Namespace:
    return argparse.Namespace(rows=2, seq_len=64, steps=2, repeats=2, compile=False)


def _result(tokens_per_s: float) -> dict[str, Any]:
    return {
        "tokens_per_s": tokens_per_s,
        "target_tokens_per_s": tokens_per_s / 2,
        "target_tokens_per_step": 50.0,
        "peak_memory_mb": 700.0,
        "first_losses": [7.0, 6.0],
        "same_batch_loss": 7.03452,
    }


def _fake_children(monkeypatch: pytest.MonkeyPatch, failing: str) -> list[str]:
    """Every peer can run; ``failing`` exits non-zero as a child would."""
    calls: list[str] = []

    def child(name: str, *rest: Any) -> dict[str, Any]:
        calls.append(name)
        if name == failing:
            raise RuntimeError(f"{name} failed: Triton could not compile")
        return _result(1000.0 if name == "ours" else 500.0)

    monkeypatch.setattr(peers, "missing", lambda name: None)
    monkeypatch.setattr(peers, "examples_per_step", lambda *a: 4)
    monkeypatch.setattr(peers, "child", child)
    return calls


def test_an_optional_peer_that_fails_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_children(monkeypatch, failing="trl_liger")
    result = peers.compare(_args(), "model", [], 0, lambda line: None)
    assert "Triton could not compile" in result["skipped"]["trl_liger"]
    assert set(result["peers"]) == {"trl", "hf_flatten", "padded"}
    assert result["peers"]["trl"]["ratio"] == 2.0
    assert calls.count("trl_liger") == 1  # not tried again in the next round
    assert calls.count("ours") == 2


def test_a_core_peer_that_fails_ends_the_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_children(monkeypatch, failing="trl")
    with pytest.raises(RuntimeError, match="trl failed"):
        peers.compare(_args(), "model", [], 0, lambda line: None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine may run Liger")
def test_liger_is_skipped_with_a_reason_without_a_gpu() -> None:
    why = peers.missing("trl_liger")
    assert why is not None and ("CUDA" in why or "liger-kernel" in why)
    assert peers.missing("ours") is None
