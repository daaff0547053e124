"""engine/run/host_memory.py: freed host memory kept between CPU training steps.

Measured as page faults, not time (machines are noisy; the speed is in
docs/benchmarks.md): the same hatchling steps in two fresh interpreters, one of them
keeping freed memory the way the engine does at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.run import host_memory

ROOT = Path(__file__).resolve().parents[2]

STEPS = """
import resource, sys, tempfile
from pathlib import Path
import torch
from engine.run.host_memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
from engine.bench.speed import examples, pool_size
from engine.model.hatchling import hatch
from engine.model.hero import load_hero
from engine.protocol.config import TrainConfig
from engine.train.chat import ChatRenderer
from engine.train.packing import ListSource, pack_rows
from engine.train.trainer import Trainer
torch.manual_seed(0)
hero = load_hero(hatch(Path(tempfile.mkdtemp())), torch.device("cpu"), "t")
pad = hero.tokenizer.pad_token_id
source = ListSource(examples(ChatRenderer(hero.tokenizer), pool_size(8, 256, 7), seed=1, seq_len=256))
trainer = Trainer(hero.model, TrainConfig(micro_batch=8, seq_len=256, warmup_steps=0, precision=sys.argv[2]), torch.device("cpu"))
batches = [pack_rows(source, 8, 256, pad) for _ in range(7)]
for batch in batches[:3]:  # the heap grows to its working size first
    trainer.step([batch])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for batch in batches[3:]:
    trainer.step([batch])
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 4)
"""

glibc_only = pytest.mark.skipif(host_memory._glibc() is None, reason="needs glibc's malloc (Linux)")


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without the user's own malloc settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not host_memory.user_tuned({k: v})}
    return {**env, **extra}


def _faults_per_step(variant: str, precision: str = "fp32", **extra_env: str) -> tuple[bool, int]:
    env = _environment(**extra_env)
    done = subprocess.run(
        [sys.executable, "-c", STEPS, variant, precision],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    kept, faults = done.stdout.split()
    return kept == "True", int(faults)


PLAIN_FLOOR = 2_000  # faults a step below which the plain run's malloc kept memory by itself


@glibc_only
def test_kept_memory_takes_most_page_faults_out_of_a_training_step() -> None:
    # measured: ~5,000-8,700 a step plain, ~250-1,100 kept (8 × 256 rows). Once in a while
    # glibc's own dynamic thresholds keep the plain run's memory too (366 a step, seen in
    # one CI run out of ten), or a loaded machine gives an odd pair (1,326 kept against
    # 3,398 plain, seen once under a full CI run): such a pair says nothing about ours, so
    # it is measured again (up to three times). A broken keep_freed_memory still fails all
    # three: its run is then a plain run, with the plain run's thousands of faults.
    for _attempt in range(3):
        kept, with_kept = _faults_per_step("keep")
        assert kept
        _, plain = _faults_per_step("plain")
        if plain >= PLAIN_FLOOR and with_kept * 3 < plain:
            break
    assert with_kept * 3 < plain, (with_kept, plain)


def _kept_in_fresh_interpreter(**extra_env: str) -> bool:
    env = _environment(**extra_env)
    code = "from engine.run.host_memory import keep_freed_memory as k; print(k(), k())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    first, again = done.stdout.split()
    assert first == again  # asking twice changes nothing
    return first == "True"


@glibc_only
def test_the_users_own_malloc_settings_win() -> None:
    assert _kept_in_fresh_interpreter()
    assert not _kept_in_fresh_interpreter(MALLOC_TRIM_THRESHOLD_="131072")
    assert not _kept_in_fresh_interpreter(GLIBC_TUNABLES="glibc.malloc.top_pad=0")


def test_user_tuned_reads_malloc_variables_and_tunables() -> None:
    assert not host_memory.user_tuned({"PATH": "/bin", "GLIBC_TUNABLES": "glibc.rtld.nns=4"})
    assert host_memory.user_tuned({"MALLOC_TOP_PAD_": "0"})
    assert host_memory.user_tuned({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"})
