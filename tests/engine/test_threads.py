"""train.threads: never more torch threads than the cores this process may use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from engine.run.threads import threads_for, usable_cores
from tests.conftest import make_hero, run_worker


def test_a_setting_above_the_cores_is_lowered_with_a_reason() -> None:
    assert threads_for(0, 8) == (0, None)  # torch decides
    assert threads_for(4, 8) == (4, None)
    assert threads_for(8, 8) == (8, None)
    lowered, why = threads_for(999, 8)
    assert lowered == 8 and why is not None and "999" in why and "8 CPU cores" in why


def test_the_engine_starts_with_too_many_threads_and_says_so(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    before = torch.get_num_threads()
    try:
        config = replace(config, train=replace(config.train, threads=usable_cores() + 997))
        worker = run_worker(save, config, 1)
        assert torch.get_num_threads() == usable_cores()
        assert any("train.threads" in w and "CPU cores here" in w for w in worker.warnings)
    finally:
        torch.set_num_threads(before)
