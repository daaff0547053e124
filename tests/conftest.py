"""Shared fixtures: a small hatchling built once per session, and hero save folders
with a fast training config (tiny rows, one thread for bit-exact comparisons)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from engine.protocol.client import EngineClient
from engine.protocol.config import GameConfig, HeroConfig, OracleConfig, TrainConfig, VaultConfig
from engine.protocol.savedir import SaveDir

ROOT = Path(__file__).resolve().parent.parent
SEED_DATA = ROOT.parent / "shared" / "seed-data"

FAST_TRAIN = TrainConfig(micro_batch=2, seq_len=128, warmup_steps=5, lr=3e-3, threads=1)
FAST_GAME = GameConfig(
    checkpoint_every=1000, eval_every=1000, eval_problems=4, val_examples=8, skills={"bin": 1.0}
)


@pytest.fixture(scope="session")
def hatchling_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.model.hatchling import HatchlingSpec, hatch

    folder = tmp_path_factory.mktemp("hatchling")
    spec = HatchlingSpec(vocab_size=512, hidden_size=64, intermediate_size=128, layers=2, heads=2, kv_heads=1)
    return hatch(folder, spec)


def make_hero(
    root: Path,
    hatchling: Path,
    name: str = "dio",
    vault: VaultConfig | None = None,
    oracle: OracleConfig | None = None,
    **game: object,
) -> tuple[SaveDir, HeroConfig]:
    """A save folder whose base model is the session's hatchling."""
    save = SaveDir(root / name)
    save.create()
    shutil.copytree(hatchling, save.base_model)
    config = HeroConfig(
        name=name,
        train=FAST_TRAIN,
        game=replace(FAST_GAME, **game),  # type: ignore[arg-type]
        vault=vault or VaultConfig(),
        oracle=oracle or OracleConfig(),
    )
    save.config.write_text(json.dumps(asdict(config)))
    return save, config


@pytest.fixture
def hero(tmp_path: Path, hatchling_dir: Path) -> tuple[SaveDir, HeroConfig]:
    return make_hero(tmp_path / "saves", hatchling_dir)


def newest_worker(worker: Any) -> Any:
    """The worker training now: a rewind, a watchdog rollback or a campaign phase hands over
    to a successor on the same thread."""
    while worker.successor is not None:
        worker = worker.successor
    return worker


def run_engine(save: SaveDir, config: HeroConfig) -> Any:
    """A worker on a thread of this process, with the one client on the other end of a Pipe."""
    from engine.run.worker import run_in_thread

    ui_end, worker, thread = run_in_thread(save, config)
    return EngineClient(ui_end), worker, thread


@pytest.fixture
def engine(hero):  # type: ignore[no-untyped-def]
    driver, worker, thread = run_engine(*hero)
    yield driver, worker
    worker.request_stop("test over")
    thread.join(60)


# ---------------------------------------------------------------------- shared helpers


def losses(metrics: Path) -> dict[int, float]:
    """step -> loss as logged (later timelines overwrite lost ones)."""
    out: dict[int, float] = {}
    for line in metrics.read_text().splitlines():
        row = json.loads(line)
        if "loss" in row:
            out[row["step"]] = row["loss"]
    return out


def run_worker(save: SaveDir, config: HeroConfig, max_steps: int) -> Any:
    """Train in this thread up to ``max_steps`` (loot every 10 steps), then stop."""
    from engine.run.server import EngineServer
    from engine.run.worker import Worker

    config = replace(config, game=replace(config.game, max_steps=max_steps, checkpoint_every=10))
    worker = Worker(save, config, EngineServer())
    worker.start()
    worker.run()
    worker.ledger.close()
    return worker


def realm_here(*args: str) -> subprocess.CompletedProcess[str]:
    """`realm ARGS` run in this process (for what needs no engine process): the exit
    status and what it printed, as ``realm`` would return them."""
    from tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
            if isinstance(exit_.code, str):
                print(exit_.code, file=err)
    return subprocess.CompletedProcess(["realm", *args], code, out.getvalue(), err.getvalue())


def realm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`realm ARGS` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def engine_process(save: SaveDir, *flags: str) -> subprocess.Popen[bytes]:
    """A real engine (`python -m engine`) for the hero, its output discarded."""
    cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root), *flags]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(predicate: Any, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def after_last_resume(metrics: Path) -> tuple[int, dict[int, float]]:
    """(the step the newest engine resumed from, step -> loss as that engine logged it)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    start = max(i for i, row in enumerate(rows) if "resumed_from" in row)
    return rows[start]["resumed_from"], {r["step"]: r["loss"] for r in rows[start:] if "loss" in r}


def last_step(metrics: Path) -> int:
    steps = losses(metrics) if metrics.exists() else {}
    return max(steps, default=0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where CUDA is there."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_tests:
        item.add_marker(skip)
