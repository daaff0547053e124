"""`realm bench` (speed) runs end to end on a tiny model and reports what it promises.
Only the shape and sanity of the figures are checked: speed is measured, not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import realm

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_bench_json_has_the_promised_figures(hatchling_dir: Path, mode: str) -> None:
    out = realm(
        "bench",
        "--json",
        "--mode",
        mode,
        "--model",
        str(hatchling_dir),
        "--steps",
        "2",
        "--rows",
        "2",
        "--seq-len",
        "64",
        "--repeats",
        "1",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("ours_tokens_per_s", "baseline_tokens_per_s", "ratio", "mfu", "peak_flops", "device"):
        assert key in result, key
    assert result["ours_tokens_per_s"] > 0 and result["baseline_tokens_per_s"] > 0
    assert abs(result["ratio"] - result["ours_tokens_per_s"] / result["baseline_tokens_per_s"]) < 0.01
    assert result["mfu"] > 0 and result["peak_flops"] > 1e8
    assert result["device"].startswith("cpu") and result["mode"] == mode
    # The peers a practitioner would pick instead, each fed the same examples and init:
    # each scores the same first batch as ours (a mis-configured peer would not).
    assert set(result["peers"]) == {"trl", "hf_flatten", "padded"}, result.get("skipped")
    assert "CUDA" in result["skipped"]["trl_liger"] or "liger" in result["skipped"]["trl_liger"]  # a GPU peer
    for name, peer in result["peers"].items():
        assert peer["tokens_per_s"] > 0 and peer["target_tokens_per_s"] > 0, name
        assert abs(peer["ratio"] - result["ours_tokens_per_s"] / peer["tokens_per_s"]) < 0.01, name
        assert len(peer["first_losses"]) == 4 and peer["losses_agree"], (name, result["contenders"])
    steps = {n: c["target_tokens_per_step"] for n, c in result["contenders"].items()}
    assert max(steps.values()) < 2 * min(steps.values()), steps  # about the same work per step
