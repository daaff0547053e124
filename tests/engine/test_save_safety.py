"""Nothing lost: a missing, empty or unreadable ledger never deletes loot; an unreadable
newest loot falls back to the one before it; a full disk pauses instead of crashing; a
quest begun after the last loot restarts from the loot's cursor; replayed steps appear
once in metrics.jsonl. Real folders and files, engines run in this process."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path
from typing import Any

import pytest

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from engine.quests.queue import QuestQueue
from engine.run.server import EngineServer
from engine.run.worker import Worker
from tests.conftest import make_hero, run_engine, run_worker
from tests.quests.conftest import ROWS, quest_text


def steps_in(save: SaveDir) -> list[int]:
    rows = [json.loads(line) for line in save.metrics.read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def start(save: SaveDir, config: object) -> Worker:
    worker = Worker(save, config, EngineServer())  # type: ignore[arg-type]
    worker.start()
    return worker


@pytest.mark.parametrize("damage", ["deleted", "empty", "truncated", "not a ledger"])
def test_a_damaged_ledger_never_costs_loot(tmp_path: Path, hatchling_dir: Path, damage: str) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 20)  # loot at 10 and 20
    before = sorted(f.name for f in save.checkpoints.iterdir())
    assert before == ["step-000010", "step-000020"]
    text = save.ledger.read_text()
    if damage == "deleted":
        save.ledger.unlink()
    elif damage == "empty":
        save.ledger.write_text("")
    elif damage == "truncated":
        save.ledger.write_text(text[: len(text) // 2])
    else:
        save.ledger.write_text('["a list, not tables"]')
    worker = start(save, config)
    assert worker.progress.step == 20  # resumed from the newest loot, not step 0
    assert sorted(f.name for f in save.checkpoints.iterdir() if not f.name.startswith(".")) == before
    assert [r["name"] for r in worker.ledger.live_loot()] == before  # adopted back
    assert worker.ledger.live_loot()[-1]["reason"] == "auto"  # the row each loot carried
    kept_aside = sorted(save.root.glob("ledger.json.corrupt-*"))
    warnings = json.loads(save.status.read_text())["warnings"]
    if damage in ("truncated", "not a ledger"):
        assert len(kept_aside) == 1 and kept_aside[0].read_text() == save_text(damage, text)
        assert any("could not be read" in w and kept_aside[0].name in w for w in warnings)
    else:
        assert not kept_aside
    assert any("adopted" in line for line in worker.report.log_lines)


def save_text(damage: str, text: str) -> str:
    return text[: len(text) // 2] if damage == "truncated" else '["a list, not tables"]'


@pytest.mark.parametrize("damage", ["truncated", "a list"])
def test_damaged_status_and_history_files_are_rewritten_not_fatal(
    tmp_path: Path, hatchling_dir: Path, damage: str
) -> None:
    """hero.json, events.jsonl and metrics.jsonl are what the engine reports, not what it
    resumes from: damaged (a disk hiccup, a hand edit), they cost no start and no loot.
    Achievements and the Market's purchases are kept aside, said so, and started afresh."""
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 20)
    broken = '{"step": 20, "state"' if damage == "truncated" else "[1, 2]"
    for path in (save.status, save.achievements, save.shop, save.watchdog):
        path.write_text(broken)
    with open(save.events, "a") as f:
        f.write('5\n["not", "an", "event"]\n{"kind": \n')
    with open(save.metrics, "a") as f:
        f.write('[20]\n{"step": \n')
    worker = start(save, config)
    assert worker.progress.step == 20  # resumed from the newest loot
    worker.request_stop("test")
    worker.run()
    worker.ledger.close()
    assert json.loads(save.status.read_text())["state"] == "stopped"  # written anew
    warnings = json.loads(save.status.read_text())["warnings"]
    for path in (save.achievements, save.shop, save.watchdog):
        aside = list(save.root.glob(f"{path.name}.corrupt-*"))
        if damage == "truncated":  # not JSON: kept aside, and the warning names the copy
            assert len(aside) == 1 and aside[0].read_text() == broken
            assert any(aside[0].name in w for w in warnings)
        else:  # JSON of the wrong shape: read as empty, the file left as it was
            assert not aside


def test_a_damaged_campaign_file_is_said_and_set_aside_on_request(
    tmp_path: Path, hatchling_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.train import campaign_files

    def offline(action: str) -> dict[str, Any]:  # what `realm campaign ACTION` runs with DIO resting
        campaign_files.main(["--save-dir", str(save.root), action])
        return dict(json.loads(capsys.readouterr().out))

    save, config = make_hero(tmp_path, hatchling_dir)
    save.campaign.write_text('{"campaign": {"name": "x", "pha')
    status = offline("status")
    assert not status["ok"] and "campaign.json cannot be read" in status["message"]
    assert "realm campaign stop" in status["message"]
    worker = run_worker(save, config, 2)  # trains without it, and says so
    assert any("campaign.json cannot be read" in w for w in worker.warnings)
    stopped = offline("stop")
    assert stopped["ok"] and "aside" in stopped["message"] and not save.campaign.exists()
    assert [f.read_text() for f in save.campaign_files.glob("ended-*.json")] == [
        '{"campaign": {"name": "x", "pha'
    ]


@pytest.mark.parametrize("part", ["model.safetensors", "trainer.pt"])
def test_an_unreadable_newest_loot_falls_back_to_the_one_before(
    tmp_path: Path, hatchling_dir: Path, part: str
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 20)
    damaged = save.checkpoints / "step-000020" / part
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 3])
    worker = start(save, config)
    assert worker.progress.step == 10
    assert (save.checkpoints / "step-000020.corrupt" / part).exists()  # kept, never deleted
    assert not (save.checkpoints / "step-000020").exists()
    said = " | ".join(worker.warnings)
    assert "Loot step-000020 cannot be read" in said and "kept as step-000020.corrupt" in said
    assert "Resuming from loot step-000010 instead of step-000020" in said
    assert [r["name"] for r in worker.ledger.live_loot()] == ["step-000010"]
    again = start(save, config)  # the same good loot again, and no new problem with it
    assert again.progress.step == 10 and not any("cannot be read" in w for w in again.warnings)


def test_a_full_disk_pauses_training_and_keeps_the_last_loot(
    hero: tuple[SaveDir, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    save, config = hero
    client, worker, thread = run_engine(save, config)  # type: ignore[arg-type]
    try:
        client.hello()
        client.wait_for(p.StepCompleted)
        client.request(p.SaveNow(), (p.CheckpointSaved,), 60)
        good = worker.ledger.live_loot()[-1]["name"]

        def no_space(*_args: object, **_kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("torch.save", no_space)  # the vault imports torch when it saves
        client.wait_for(p.StepCompleted)
        paused = client.request(p.SaveNow(), (p.Paused,), 60)
        said = [e.text for e in client.seen if isinstance(e, p.LogLine)]
        assert any(text.startswith("disk full: loot not saved") for text in said), said
        assert worker.paused and worker.stop_reason is None  # paused, not crashed
        assert [f.name for f in save.checkpoints.iterdir()] == [good]  # no temp folder left
        assert worker.ledger.live_loot()[-1]["name"] == good
        monkeypatch.undo()  # the player frees some space and presses space
        client.request(p.Resume(), (p.Resumed,), 60)
        client.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step > paused.step)
        saved = client.request(p.SaveNow(), (p.CheckpointSaved,), 60)
        assert saved.loot.step > paused.step
    finally:
        worker.request_stop("test over")
        thread.join(60)


def test_replayed_steps_appear_once_in_the_metrics(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 10)
    worker = start(save, config)
    for _ in range(7):  # steps 11..17, then the engine "dies" without loot
        worker._train_step()
    worker.ledger.close()
    assert steps_in(save) == list(range(1, 18))
    again = start(save, config)  # resumes at 10: steps 11..17 are replayed
    assert again.progress.step == 10
    for _ in range(7):
        again._train_step()
    assert steps_in(save) == list(range(1, 18))  # once each, the replayed timeline's


def test_a_quest_begun_after_the_last_loot_restarts_from_the_loots_cursor(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    worker = start(save, config)
    for _ in range(2):
        worker._train_step()
    worker.take_loot("manual")  # loot at step 2: no quest in it yet
    src = tmp_path / "late.jsonl"
    src.write_text(quest_text(ROWS[:6]))
    QuestQueue(save.root).admit(src, move=False)
    drive(worker, lambda: worker.keeper.active is not None)
    for _ in range(3):
        worker._train_step()
    worker.write_status()  # the sidecar's live counter runs ahead of the loot
    assert QuestQueue(save.root).get("late.jsonl").seen > 0
    worker.keeper.stop()  # the engine dies here, without loot
    worker.ledger.close()

    again = start(save, config)
    assert again.progress.step == 2
    assert QuestQueue(save.root).get("late.jsonl").seen == 0  # the loot knew no quest: row 0
    drive(again, lambda: again.keeper.finished, train=True)
    done = again.keeper.complete_info(again.progress.step)
    assert done.seen == done.total == 6  # every row, none skipped
    again.complete_quest()
    assert again.progress.gold == 100


def drive(worker: Worker, until: Any, train: bool = False, limit: float = 60.0) -> None:
    """Run the keeper (and training) between steps until ``until()``."""
    deadline = time.monotonic() + limit
    while not until():
        assert time.monotonic() < deadline, "timed out"
        worker.keeper.poll()
        if train:
            worker._train_step()
        else:
            time.sleep(0.05)


def test_status_without_hero_json_reads_the_loot_folders(tmp_path: Path, hatchling_dir: Path) -> None:
    from tui.cli.status import status_record

    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 20)  # loot at 10 and 20
    save.status.unlink()
    record = status_record(save)
    assert (record["step"], record["last_loot_step"], record["loot"]) == (20, 20, 2)
    assert any("hero.json is missing" in w for w in record["warnings"])
    from tui.cli.heroes import hero_row

    assert hero_row(save)["step"] == 20  # `realm heroes` too
