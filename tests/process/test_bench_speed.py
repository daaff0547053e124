"""`realm bench` (speed) runs end to end on a tiny model and reports what it promises.
Only the shape and sanity of the figures are checked: speed is measured, not asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import realm

pytestmark = pytest.mark.slow


def test_bench_json_has_the_promised_figures(hatchling_dir: Path) -> None:
    out = realm(
        "bench",
        "--json",
        "--model",
        str(hatchling_dir),
        "--steps",
        "2",
        "--rows",
        "2",
        "--seq-len",
        "64",
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("ours_tokens_per_s", "baseline_tokens_per_s", "ratio", "mfu", "peak_flops", "device"):
        assert key in result, key
    assert result["ours_tokens_per_s"] > 0 and result["baseline_tokens_per_s"] > 0
    assert abs(result["ratio"] - result["ours_tokens_per_s"] / result["baseline_tokens_per_s"]) < 0.01
    assert result["mfu"] > 0 and result["peak_flops"] > 1e8
    assert result["device"].startswith("cpu")
