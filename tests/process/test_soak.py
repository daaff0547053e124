"""A short kill -9 soak (the 50-kill figure is in docs/benchmarks.md): a training engine
with frequent loot, quest files dropped meanwhile, killed at random and restarted."""

from __future__ import annotations

import pytest

from engine.bench.soak import soak

pytestmark = pytest.mark.slow


def test_kill_9_soak_loses_nothing() -> None:
    lines: list[str] = []
    result = soak(kills=3, seed=7, echo=lines.append)
    assert result["kills"] == 3 and len(lines) == 3
    assert result["lost"] == 0 and result["inconsistent"] == 0, result["problems"]
