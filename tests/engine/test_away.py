"""The while-away summary counts what happened while nobody watched: steps, evals, loot,
skill levels, quests, gold, crashes and watchdog interventions (real worker, real files)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.run import report
from engine.store.ledger import Ledger
from tests.conftest import make_hero, run_worker


def test_the_away_summary_after_a_crash(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, eval_every=10)
    run_worker(save, config, max_steps=5)
    status = json.loads(save.status.read_text())
    assert status["crashes"] == 0
    # The player left at step 5; then the engine was killed (hero.json still says training).
    status["last_watched"] = {"time": time.time(), "step": 5, "level": 0, "gold": 0, "crashes": 0,
                              "skills": {"bin": 0, "sy": 1}}  # fmt: skip
    status["state"] = "training"
    save.status.write_text(json.dumps(status))
    worker = run_worker(save, config, max_steps=25)
    worker.ledger = Ledger(save.ledger)
    worker.ledger.record_quest({"name": "hi.jsonl"})  # a quest finished meanwhile…
    worker.progress.gold += 100  # …and paid
    worker.ledger.record_intervention({"kind": "skip", "step": 12})  # a skip is no intervention
    worker.ledger.record_intervention({"kind": "rollback", "step": 18})
    away = report.away_summary(worker)
    assert away is not None
    assert away.steps_gained == 20 and away.restarted
    assert away.crashes == 1 and away.evals == 2  # evals at steps 10 and 20
    assert {10, 20} <= set(away.loot_steps)
    assert (away.quests_done, away.gold_gained, away.interventions) == (1, 100, 1)
    assert away.skill_levels == ("BIN L1",)  # bin was at 0 when the player left (a crafted past)
    assert json.loads(save.status.read_text())["crashes"] == 1  # the count outlives the engine
