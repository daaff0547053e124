"""Quests in a running engine (driven over a Pipe as the game drives it): a quest trains
for its epochs and pays gold, bad files are refused while DIO keeps training, the queue
is taken in priority order, a quest can be cancelled, eval problems never train."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.quests.queue import QuestQueue
from skills.registry import get_skill
from tests.conftest import make_hero, newest_worker, run_engine
from tests.quests.conftest import BAD, ROWS, quest_text


@pytest.fixture
def running(tmp_path: Path, hatchling_dir: Path):  # type: ignore[no-untyped-def]
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    driver, worker, thread = run_engine(save, config)
    driver.send(p.Hello())
    driver.wait_for(p.Snapshot)
    yield driver, worker, save.root
    worker.request_stop("test over")
    thread.join(60)


def test_a_quest_trains_for_its_epochs_pays_gold_and_is_linked_to_loot(running) -> None:  # type: ignore[no-untyped-def]
    driver, worker, root = running
    (root / "inbox" / "greetings.jsonl").write_text(quest_text(ROWS, epochs=2))
    done = driver.wait_for(p.QuestCompleted, 120)
    quest = done.quest
    assert (quest.name, quest.state, quest.rows, quest.epochs, quest.seen) == (
        "greetings.jsonl",
        "done",
        24,
        2,
        48,
    )
    assert done.gold == 100 and worker.progress.gold == 100
    assert quest.loss_before is not None and quest.loss_after is not None
    assert quest.loss_after < quest.loss_before  # it learned the quest
    assert quest.tokens > 0
    progress = [e.quest for e in driver.seen if isinstance(e, p.StepCompleted) and e.quest is not None]
    # live progress was shown (how many events carry it depends on the step rate: >= 1)
    assert progress and all(0 < q.seen <= 48 for q in progress)
    assert [q.seen for q in progress] == sorted(q.seen for q in progress)
    # done/ keeps the file and its stats; the ledger links the quest to the loot after it
    assert (root / "done" / "greetings.jsonl").read_text() == quest_text(ROWS, epochs=2)
    sidecar = json.loads((root / "done" / ".greetings.jsonl.quest.json").read_text())
    assert sidecar["seen"] == 48 and sidecar["loss_after"] == quest.loss_after
    ledger = json.loads((root / "ledger.json").read_text())
    [row] = ledger["quests"].values()
    loot_names = {r["name"] for r in ledger["loot"].values()}
    assert row["name"] == "greetings.jsonl" and row["loot"] == done.loot and done.loot in loot_names
    meta = json.loads((root / "checkpoints" / done.loot / "meta.json").read_text())
    assert meta["progress"]["gold"] == 100 and meta["quest"] is None
    status = json.loads((root / "hero.json").read_text())
    assert status["gold"] == 100


def test_bad_files_are_refused_while_dio_keeps_training(running) -> None:  # type: ignore[no-untyped-def]
    driver, worker, root = running
    for i, (data, _reason) in enumerate(BAD.values()):
        (root / "inbox" / f"bad{i}.jsonl").write_bytes(data.encode() if isinstance(data, str) else data)
    for _ in BAD:
        driver.wait_for(p.QuestRejected, 60)
    step = worker.progress.step
    driver.wait_for(p.StepCompleted)
    driver.wait_for(p.StepCompleted)
    assert worker.progress.step > step and worker.stop_reason is None
    failed = sorted(q.name for q in QuestQueue(root).all() if q.state == "failed")
    assert failed == sorted(f"bad{i}.jsonl" for i in range(len(BAD)))
    for name in failed:
        assert (root / "failed" / f"{name}.reason.txt").read_text().strip()


def test_priority_order_is_kept_by_the_engine(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    queue = QuestQueue(save.root)
    queue.create()
    for i, (name, priority) in enumerate(
        (("first-low", "low"), ("second-normal", "normal"), ("third-high", "high"))
    ):
        src = tmp_path / f"{name}.jsonl"
        src.write_text(quest_text(ROWS[4 * i : 4 * i + 4]))
        queue.admit(src, move=False, priority=priority)
    _driver, worker, thread = run_engine(save, config)
    try:
        deadline = time.monotonic() + 120
        while any(q.state != "done" for q in queue.all()) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.request_stop("test over")
        thread.join(60)
    rows = json.loads(save.ledger.read_text())["quests"].values()
    finished = [r["name"] for r in sorted(rows, key=lambda r: r["recorded_at"])]
    assert finished == ["third-high.jsonl", "second-normal.jsonl", "first-low.jsonl"]
    assert worker.progress.gold == 300


def test_cancel_an_active_quest_and_retry_it(running) -> None:  # type: ignore[no-untyped-def]
    driver, worker, root = running
    (root / "inbox" / "long.jsonl").write_text(quest_text(ROWS, epochs=50))
    wait_active(driver)
    driver.send(p.CancelQuest("long"))
    reply = driver.wait_for(p.QuestReply)
    assert reply.ok and "cancelled" in reply.message
    assert worker.keeper.active is None and worker.stream.quest is None
    reason = (root / "failed" / "long.jsonl.reason.txt").read_text()
    assert "cancelled by the user at row" in reason
    driver.send(p.RetryQuest("long.jsonl"))
    assert driver.wait_for(p.QuestReply).ok
    board = driver.wait_for(p.QuestBoard)
    assert any(q.name == "long.jsonl" and q.state in ("queued", "active") for q in board.quests)
    driver.send(p.SetQuestPriority("nope", "high"))
    refused = driver.wait_for(p.QuestReply)
    assert not refused.ok and "no quest named" in refused.message


def test_add_quest_command_validates_and_copies(running, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    driver, _worker, root = running
    good = tmp_path / "mine.jsonl"
    good.write_text(quest_text(ROWS[:3]))
    driver.send(p.AddQuest(str(good), priority="high", epochs=3))
    reply = driver.wait_for(p.QuestReply, 30)
    assert reply.ok and "mine.jsonl queued (high, 3 rows)" in reply.message
    assert good.exists()  # the user's file stays
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    driver.send(p.AddQuest(str(bad)))
    refused = driver.wait_for(p.QuestReply, 30)
    assert not refused.ok and "line 1: no assistant turn" in refused.message
    assert not (root / "failed" / "bad.jsonl").exists()  # a refused add copies nothing


def test_eval_problems_in_a_quest_are_never_trained(running) -> None:  # type: ignore[no-untyped-def]
    driver, _worker, root = running
    planted = get_skill("bin").eval_set(1)[:2]
    rows = ROWS[:6] + [
        {
            "messages": [
                {"role": "user", "content": prob.prompt},
                {"role": "assistant", "content": prob.answer},
            ]
        }
        for prob in planted
    ]
    (root / "inbox" / "sneaky.jsonl").write_text(quest_text(rows, checks="deep"))
    done = driver.wait_for(p.QuestCompleted, 120).quest
    assert done.rows == 6
    assert any("contamination" in n and "line 8, 9" in n for n in done.notices), done.notices


def wait_active(driver: EngineClient) -> p.QuestInfo:
    while True:
        event = driver.wait_for(p.StepCompleted, 60)
        if event.quest is not None and event.quest.seen > 0:
            return event.quest


# Files that once killed the intake thread or the engine, each dropped into a running
# engine's real inbox: (file name as bytes, content).
HOSTILE = {
    "a name that is not UTF-8": (b"caf\xe9-\xff.jsonl", quest_text(ROWS[:2]).encode()),
    "a lone surrogate in the content": (b"surrogate.jsonl", b'{"prompt": "a\\ud800", "completion": "b"}\n'),
    "JSON nested 10,000 deep": (b"deep.jsonl", b"[" * 10_000 + b"]" * 10_000 + b"\n"),
    "a legal 249-character name": (b"n" * 243 + b".jsonl", quest_text(ROWS[2:4]).encode()),
    "escape codes in the name": (b"\x1b[2J\x1b[31mwipe.jsonl", quest_text(ROWS[4:6]).encode()),
    "the user's own .reason.txt": (b"mine.jsonl.reason.txt", b"my notes, not JSON\n"),
}


def test_no_file_stops_the_intake_or_the_engine(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    client, worker, thread = run_engine(save, config)
    root = save.root
    try:
        client.hello()
        inbox = os.fsencode(root / "inbox")
        for name, data in HOSTILE.values():
            with open(os.path.join(inbox, name), "wb") as f:
                f.write(data)
        time.sleep(0.1)
        with open(
            os.path.join(inbox, b"mine.jsonl"), "wb"
        ) as f:  # its reason file would be mine.jsonl.reason.txt
            f.write(b"not json either\n")
        board = client.wait_until(
            lambda e: isinstance(e, p.QuestBoard) and len(e.quests) == len(HOSTILE) + 1,
            120,
            "every file on the board",
        )
        step = worker.progress.step
        client.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step > step + 1)
        # a watchdog rollback hands over to a new worker (the same thread): not a stop
        assert newest_worker(worker).stop_reason is None and thread.is_alive()
    finally:
        newest_worker(worker).request_stop("test over")
        thread.join(60)
    assert not list((root / "inbox").iterdir())  # every file got an answer
    names = [q.name for q in board.quests]
    assert all(name.isprintable() and len(name.encode()) <= 120 for name in names), names
    assert all(q.reason.isprintable() for q in board.quests)
    # the user's notes are kept as they were, beside the reason for mine.jsonl
    notes = [q for q in board.quests if q.name.startswith("mine.jsonl.reason")]
    assert len(notes) == 1 and (root / "failed" / notes[0].name).read_bytes() == b"my notes, not JSON\n"
    mine = next(q for q in board.quests if q.name.startswith("mine") and q is not notes[0])
    assert (root / "failed" / f"{mine.name}.reason.txt").read_text().strip() == mine.reason
    # and the next start is not stopped by any of them
    again, again_worker, again_thread = run_engine(save, config)
    try:
        again.hello()
        again.wait_for(p.StepCompleted, 60)
    finally:
        again_worker.request_stop("test over")
        again_thread.join(60)


def test_the_same_content_is_refused_not_paid_twice(running) -> None:  # type: ignore[no-untyped-def]
    driver, worker, root = running
    (root / "inbox" / "once.jsonl").write_text(quest_text(ROWS[:3]))
    done = driver.wait_for(p.QuestCompleted, 120)
    (root / "inbox" / "again.jsonl").write_text(quest_text(ROWS[:3]))
    refused = driver.wait_for(p.QuestRejected, 60)
    assert refused.name == "again.jsonl"
    assert refused.reason == f"same content as quest once.jsonl (done at step {done.quest.finished_step})"
    assert (root / "failed" / "again.jsonl").exists() and worker.progress.gold == 100
