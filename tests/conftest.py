"""Shared fixtures: a small hatchling built once per session, and hero save folders
with a fast training config (tiny rows, one thread for bit-exact comparisons)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from engine.config import GameConfig, HeroConfig, TrainConfig
from engine.savedir import SaveDir

ROOT = Path(__file__).resolve().parent.parent
SEED_DATA = ROOT.parent / "shared" / "seed-data"

FAST_TRAIN = TrainConfig(micro_batch=4, seq_len=64, warmup_steps=5, lr=3e-3, threads=1)
FAST_GAME = GameConfig(
    checkpoint_every=1000, eval_every=1000, eval_problems=4, val_examples=8, skills={"bin": 1.0}
)


@pytest.fixture(scope="session")
def hatchling_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.hatchling import HatchlingSpec, hatch

    folder = tmp_path_factory.mktemp("hatchling")
    spec = HatchlingSpec(vocab_size=512, hidden_size=64, intermediate_size=128, layers=2, heads=2, kv_heads=1)
    return hatch(folder, spec)


def make_hero(root: Path, hatchling: Path, name: str = "dio", **game: object) -> tuple[SaveDir, HeroConfig]:
    """A save folder whose base model is the session's hatchling."""
    save = SaveDir(root / name)
    save.create()
    shutil.copytree(hatchling, save.base_model)
    config = HeroConfig(name=name, train=FAST_TRAIN, game=replace(FAST_GAME, **game))  # type: ignore[arg-type]
    save.config.write_text(json.dumps(asdict(config)))
    return save, config


@pytest.fixture
def hero(tmp_path: Path, hatchling_dir: Path) -> tuple[SaveDir, HeroConfig]:
    return make_hero(tmp_path / "saves", hatchling_dir)


class Driver:
    """The UI's end of the pipe, with helpers to wait for events."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.seen: list[Any] = []

    def send(self, command: Any) -> None:
        self.conn.send(command)

    def wait_for(self, kind: type, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.conn.poll(0.1):
                event = self.conn.recv()
                self.seen.append(event)
                if isinstance(event, kind):
                    return event
        raise AssertionError(
            f"no {kind.__name__} within {timeout}s; saw {[type(e).__name__ for e in self.seen]}"
        )


def run_engine(save: SaveDir, config: HeroConfig) -> Any:
    """A worker on a thread of this process, with a Driver on the other end of a Pipe."""
    from engine.worker import run_in_thread

    ui_end, worker, thread = run_in_thread(save, config)
    return Driver(ui_end), worker, thread


@pytest.fixture
def engine(hero):  # type: ignore[no-untyped-def]
    driver, worker, thread = run_engine(*hero)
    yield driver, worker
    worker.request_stop("test over")
    thread.join(60)
