"""`realm bench --gpu-paths` runs every training path it can on this machine and says
why it skipped the rest: on a CPU full and lora train the hatchling; qlora, the real OOM
and NVML need a GPU and say so (tests/engine/test_gpu.py checks them where CUDA is)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.model.hero import has_bf16, has_fp16
from tests.conftest import realm

pytestmark = pytest.mark.slow


def test_gpu_paths_trains_each_mode_it_can_and_says_why_not_the_others() -> None:
    args = ("bench", "--gpu-paths", "--json", "--steps", "2", "--rows", "2", "--seq-len", "128")
    out = realm(*args, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    modes = result["modes"]
    assert set(modes) == {"full", "lora", "qlora", "full_fp16"}
    if not has_fp16(torch.device("cpu")):  # emulated here: refused, as the engine refuses it
        assert "emulated" in modes["full_fp16"]["skipped"]
    for mode in ("full", "lora"):
        ran = modes[mode]
        assert ran["losses_finite"] and ran["tokens_per_s"] > 0, (mode, ran)
        assert math.isfinite(ran["first_loss"]) and ran["last_loss"] < ran["first_loss"] + 1.0
        # bf16 autocast only where the CPU has bf16 units (engine/model/hero.py: has_bf16)
        autocast = "bfloat16" if has_bf16(torch.device("cpu")) else "none (fp32)"
        assert ran["attention"] == "sdpa_segments" and ran["autocast"] == autocast
        assert ran["peak_memory_mb"] > 0 and ran["estimate_gib"]["total"] > 0
    assert modes["lora"]["trainable_params"] < modes["full"]["trainable_params"] / 10
    assert (
        modes["lora"]["estimate_gib"]["trainable_params"] < modes["full"]["estimate_gib"]["trainable_params"]
    )
    assert "CUDA GPU" in modes["qlora"]["skipped"]
    assert "GPU" in result["out_of_memory"]["skipped"]
    assert result["nvml_after_full"]["available"] is False and result["device"] == "cpu"
