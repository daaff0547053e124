"""`realm train --gpus 2` on this CPU: two torchrun ranks on gloo train exactly like one
process with the same global batch, and a rank killed with -9 ends the run with the other
rank's loot saved, from which the next start resumes. With --fsdp (the training state
sharded) the same, and loot moves between a sharded run and a single process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, last_step, losses, make_hero, realm, wait_until

pytestmark = pytest.mark.slow


def hero_with(
    root: Path, hatchling: Path, name: str, micro_batch: int, grad_accum: int, checkpoint_every: int = 1000
) -> Path:
    save, config = make_hero(root, hatchling, name=name, checkpoint_every=checkpoint_every)
    # fp32: "the same losses within float tolerance" is an fp32 property; under bf16 autocast
    # (the default on a CPU with bf16 units) each rank's smaller matmuls round differently
    train = replace(config.train, micro_batch=micro_batch, grad_accum=grad_accum, precision="fp32")
    save.config.write_text(replace(config, train=train).to_json())
    return save.root


def rank_pids(save_dir: Path) -> dict[int, int]:
    """rank → pid of the engine processes torchrun started for this hero."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine" in cmdline and str(save_dir).encode() in cmdline:
            rank = next((int(v[5:]) for v in environ if v.startswith(b"RANK=")), None)
            if rank is not None and b"engine.run.launch" not in b" ".join(cmdline):
                found[rank] = int(entry.name)
    return found


@pytest.mark.parametrize(
    ("micro_batch", "grad_accum"),
    # whole micro-batches per rank; one micro-batch's rows shared; 3 rows (the hatchling's
    # automatic micro-batch) shared 2 + 1
    [(2, 2), (4, 1), (3, 1)],
    ids=["micro-batches", "rows", "uneven-rows"],
)
def test_two_ranks_train_like_one_process(
    tmp_path: Path, hatchling_dir: Path, micro_batch: int, grad_accum: int
) -> None:
    saves = tmp_path / "saves"
    one = hero_with(saves, hatchling_dir, "one", micro_batch, grad_accum)
    two = hero_with(saves, hatchling_dir, "two", micro_batch, grad_accum)
    alone = realm("train", "--hero", "one", "--saves", str(saves), "--max-steps", "5")
    ranks = realm("train", "--hero", "two", "--saves", str(saves), "--max-steps", "5", "--gpus", "2")
    assert alone.returncode == 0 and ranks.returncode == 0, ranks.stdout[-2000:] + ranks.stderr[-2000:]
    assert "Training on 2 ranks" in ranks.stdout + ranks.stderr
    single, shared = losses(one / "metrics.jsonl"), losses(two / "metrics.jsonl")
    assert sorted(single) == sorted(shared) == [1, 2, 3, 4, 5]
    for step in single:
        assert shared[step] == pytest.approx(single[step], rel=1e-5, abs=1e-6), step
    assert not rank_pids(two)  # every rank ended


def steps_after(metrics: Path, step: int) -> dict[int, float]:
    return {k: v for k, v in losses(metrics).items() if k > step}


def same_losses(first: dict[int, float], second: dict[int, float]) -> None:
    assert first and sorted(first) == sorted(second)
    for step in first:
        assert second[step] == pytest.approx(first[step], rel=1e-5, abs=1e-6), step


def test_sharded_ranks_train_like_one_process_and_loot_moves_between_them(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """--fsdp: the same losses as one process (3 rows on 2 ranks: one rank runs a row at
    weight 0 so both gather every layer); its stop loot (weights gathered every step into
    rank 0's copy, optimizer state gathered at saving) resumes in one process exactly like
    one-process loot, and one-process loot resumes sharded exactly too."""
    saves = tmp_path / "saves"
    one = hero_with(saves, hatchling_dir, "one", 3, 1)
    two = hero_with(saves, hatchling_dir, "two", 3, 1)

    def train(hero: str, steps: int, *flags: str) -> str:
        run = realm("train", "--hero", hero, "--saves", str(saves), "--max-steps", str(steps), *flags)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        return run.stdout + run.stderr

    assert "the training state sharded (FSDP)" in train("two", 4, "--gpus", "2", "--fsdp")
    status = json.loads((two / "hero.json").read_text())
    assert (status["ranks"], status["sharded"]) == (2, True)  # what `realm play` compares its flags with
    train("one", 4)
    same_losses(losses(one / "metrics.jsonl"), losses(two / "metrics.jsonl"))
    assert "wakes on cpu at step 4" in train("two", 7)  # sharded loot, one process
    train("one", 7)
    same_losses(steps_after(one / "metrics.jsonl", 4), steps_after(two / "metrics.jsonl", 4))
    assert "wakes on cpu at step 7" in train("one", 10, "--gpus", "2", "--fsdp")  # and back
    train("two", 10)
    same_losses(steps_after(one / "metrics.jsonl", 7), steps_after(two / "metrics.jsonl", 7))
    assert not rank_pids(one) and not rank_pids(two)


def kill_rank_1_after(saves: Path, hero: Path, steps: int, *flags: str) -> tuple[dict[str, Any], str]:
    """`realm train --gpus 2 FLAGS`, rank 1 killed with -9 once ``steps`` are done: every
    rank must end. Returns hero.json afterwards and what the run printed."""
    cmd = [sys.executable, "-m", "tui.cli", "train", "--saves", str(saves), "--gpus", "2", *flags]
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: last_step(hero / "metrics.jsonl") >= steps, 120, "a few steps on two ranks")
        pids = rank_pids(hero)
        assert set(pids) == {0, 1}, pids
        os.kill(pids[1], signal.SIGKILL)
        run.wait(90)
    finally:
        if run.poll() is None:
            run.kill()
    out = run.stdout.read() if run.stdout else ""
    assert not rank_pids(hero), out[-2000:]
    return json.loads((hero / "hero.json").read_text()), out[-2000:]


def resumes_at(saves: Path, hero: Path, step: int, *flags: str) -> None:
    again = realm("train", "--saves", str(saves), "--gpus", "2", *flags, "--max-steps", str(step + 2))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"wakes on cpu at step {step}" in again.stdout + again.stderr
    assert last_step(hero / "metrics.jsonl") == step + 2


def test_a_killed_sharded_rank_ends_the_run_and_the_next_start_resumes_from_loot(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """Sharded, the killed rank's part of the optimizer state is gone: no stop loot; the
    run ends cleanly, saying so, and the next start resumes from the last loot."""
    saves = tmp_path / "saves"
    hero = hero_with(saves, hatchling_dir, "dio", 2, 2, checkpoint_every=4)
    status, out = kill_rank_1_after(saves, hero, 9, "--fsdp")
    loot = status["last_loot_step"]
    assert status["state"] == "stopped" and loot >= 8 and loot % 4 == 0 and status["step"] >= loot, out
    assert "its shard of the training state went with it" in (hero / "events.jsonl").read_text()
    told = realm("status", "--saves", str(saves))
    assert f"resume from the loot at step {loot}" in told.stdout, told.stdout
    resumes_at(saves, hero, loot, "--fsdp")


def test_a_killed_rank_ends_the_run_and_the_next_start_resumes(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = tmp_path / "saves"
    hero = hero_with(saves, hatchling_dir, "dio", 2, 2)
    status, out = kill_rank_1_after(saves, hero, 8)
    # Rank 0 kept the last finished step: a stop loot there, not a crash.
    assert status["state"] == "stopped" and status["last_loot_step"] == status["step"] >= 8, out
    assert "A training rank stopped" in (hero / "events.jsonl").read_text()
    resumes_at(saves, hero, status["step"])


def test_ctrl_c_saves_loot_on_every_rank_and_ends_without_a_traceback(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """torchrun starts each rank in its own session, so a Ctrl+C reaches only the launcher
    (engine/run/launch.py), which passes it on: rank 0 saves its stop loot (sharded: the
    optimizer state gathered from both ranks) and every process ends, with one line."""
    saves = tmp_path / "saves"
    hero = hero_with(saves, hatchling_dir, "dio", 2, 2)
    cmd = [sys.executable, "-m", "tui.cli", "train", "--saves", str(saves), "--gpus", "2", "--fsdp"]
    run = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: last_step(hero / "metrics.jsonl") >= 5, 120, "a few steps on two ranks")
        run.send_signal(signal.SIGINT)  # `realm train` exec'd the launcher: this is its pid
        code = run.wait(90)
    finally:
        if run.poll() is None:
            run.kill()
    out = run.stdout.read() if run.stdout else ""
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert "the ranks were sent SIGINT and have ended" in out
    status = json.loads((hero / "hero.json").read_text())
    assert status["state"] == "stopped" and status["last_loot_step"] == status["step"] >= 5
    assert not rank_pids(hero)
