"""Sparring: the three rows per mistake exactly as specified, the high-priority quest
with its re-test ("fixed k of n"), and stale sparring quests retired."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from engine.evals import sparring
from engine.protocol import messages as p
from engine.protocol.config import SparringConfig
from engine.run import spar_work
from engine.run.server import EngineServer
from engine.run.worker import Worker
from skills.registry import get_skill
from tests.conftest import make_hero, run_engine


def test_each_mistake_becomes_the_three_rows() -> None:
    skill = get_skill("bin")
    wrong, fresh = skill.generate(1, 1, "eval"), skill.generate(1, 2, "eval")
    rows = sparring.rows_for(wrong, "①①①", fresh)
    users = [r["messages"][-2]["content"] for r in rows]
    said = [r["messages"][-1]["content"] for r in rows]
    assert users[0] == f"{wrong.prompt}\n\nProposed answer: ①①①\n\nIs this answer correct?"
    assert users[1].endswith("Proposed answer: ①①①\n\nThis answer is incorrect. Find the correct solution.")
    assert users[2] == f"{fresh.prompt}\n\nProposed answer: {fresh.answer}\n\nIs this correct?"
    assert said == ["It is incorrect.", wrong.answer, "It is correct."]
    assert sparring.judgement_share(rows) == 2 / 3  # one "incorrect" for each "correct", never more
    header = json.loads(sparring.quest_text(rows).splitlines()[0])
    assert header == {"quest": {"priority": "high", "epochs": 1}}


def test_spar_queues_a_high_priority_quest_and_reports_what_it_fixed(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    # rows carry DIO's (long, untrained) wrong answers: they need real rows to fit
    driver, worker, thread = run_engine(save, replace(config, train=replace(config.train, seq_len=256)))
    try:
        driver.hello()
        reply = driver.request(p.Spar("bin", problems=6), (p.QuestReply,), 300)
        assert reply.ok and "missed" in reply.message and "queued at high priority" in reply.message, reply
        missed = int(reply.message.split("missed ")[1].split(" of")[0])
        board = driver.wait_until(
            lambda e: isinstance(e, p.QuestBoard) and any(q.name.startswith("spar-bin") for q in e.quests),
            120,
        )
        quest = next(q for q in board.quests if q.name.startswith("spar-bin"))
        meta = spar_work.sidecar(worker, quest.name)
        assert meta is not None and len(meta["problems"]) == missed and meta["skill"] == "bin"
        assert quest.priority == "high" and quest.rows == meta["rows"]  # every row passed the checks
        assert missed < meta["rows"] <= 3 * missed  # three per mistake, repeats counted once
        done = driver.wait_until(
            lambda e: (
                isinstance(e, p.QuestBoard) and any(q.name == quest.name and q.outcome for q in e.quests)
            ),
            600,
        )
        outcome = next(q.outcome for q in done.quests if q.name == quest.name)
        assert outcome.startswith("fixed ") and outcome.endswith(f" of {missed}")
        row = next(r for r in worker.ledger.db.table("quests").all() if r["name"] == quest.name)
        assert row["outcome"] == outcome
        unknown = driver.request(p.Spar("nope"), (p.QuestReply,), 60)
        assert not unknown.ok and "does not train skill 'nope'" in unknown.message
    finally:
        worker.request_stop("test over")
        thread.join(120)


def test_a_stale_sparring_quest_is_retired_with_a_reason(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    config = replace(
        config, sparring=SparringConfig(max_age_steps=3), train=replace(config.train, seq_len=256)
    )
    worker = Worker(save, config, EngineServer())
    worker.start()

    class Quiet:
        def __init__(self) -> None:
            self.sent: list[object] = []

        def send(self, event: object) -> None:
            self.sent.append(event)

    client = Quiet()
    spar_work.spar(worker, client, p.Spar("bin", problems=4))  # type: ignore[arg-type]
    worker.tasks.drain()
    assert isinstance(client.sent[-1], p.QuestReply) and client.sent[-1].ok, client.sent
    name = next(q.name for q in worker.keeper.queue.all() if q.name.startswith("spar-"))
    spar_work.retire_stale(worker)
    assert worker.keeper.queue.get(name).state == "queued"  # young enough
    worker.progress.step += 4
    spar_work.retire_stale(worker)
    retired = worker.keeper.queue.get(name)
    assert retired.state == "failed" and "retired: made from DIO's mistakes at step 0" in retired.reason
    worker.ledger.close()
