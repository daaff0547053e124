"""A returning hero's first frame comes from its save folder (real hero.json, a real
tinydb ledger), before the engine has said a word; the engine's snapshot then wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from engine.store.ledger import Ledger
from tests.tui.conftest import FakeEngine, settle, snapshot
from tui.app import RealmApp
from tui.saved import saved_state
from tui.widgets.hero_card import HeroCard
from tui.widgets.loot_feed import LootFeed


def returning_hero(root: Path) -> SaveDir:
    save = SaveDir(root / "dio")
    save.create()
    save.config.write_text(json.dumps({"name": "dio", "game": {"xp_per_level": 1000}}))
    status = {"hero": "dio", "model": "hatchling", "device": "cpu", "step": 3456, "level": 3,
              "gold": 70, "loss": 0.5, "val_loss": 0.8, "acc": 0.75,
              "grade": {"letter": "B", "score": 84, "parts": []}}  # fmt: skip
    save.status.write_text(json.dumps(status))
    ledger = Ledger(save.ledger)
    for step, reason in ((3000, "auto"), (3400, "quest")):
        ledger.record_loot({"name": f"step-{step:06d}", "step": step, "time": 1.0, "reason": reason,
                            "train_loss": 0.6, "metrics": {"capitals": 0.5}})  # fmt: skip
    ledger.close()
    return save


def test_saved_state_reads_the_card_and_the_loot(tmp_path: Path) -> None:
    state = saved_state(returning_hero(tmp_path))
    s = state.stats
    assert (s.step, s.level, s.gold, s.acc, s.grade) == (3456, 3, 70, 0.75, "B 84")
    assert abs(s.atk - 2.0) < 1e-9 and abs(s.defense - 1.25) < 1e-9
    assert [(x.step, x.reason, x.metrics) for x in state.loot] == [
        (3000, "auto", (("capitals", 0.5),)),
        (3400, "quest", (("capitals", 0.5),)),
    ]


def test_a_new_or_broken_save_gives_a_plain_first_frame(tmp_path: Path) -> None:
    assert saved_state(SaveDir(tmp_path / "new")).stats == p.HeroStats()
    save = returning_hero(tmp_path)
    save.status.write_text('{"step": 12')  # cut mid-write
    save.ledger.write_text("not json")
    state = saved_state(save)
    assert state.stats.step == 0 and state.loot == []
    assert save.ledger.read_text() == "not json"  # only the engine repairs the ledger


@pytest.mark.asyncio
async def test_the_first_frame_is_the_saved_hero_until_the_engine_speaks(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector, saved=saved_state(returning_hero(tmp_path)))
    async with app.run_test(size=(80, 24)) as pilot:
        await engine.expect(p.Hello)  # connected, but no snapshot yet
        await settle(pilot)
        card = app.tavern.query_one(HeroCard)
        text = card.render().plain
        assert "Level 3" in text and "step 3,456" in text and "GOLD 70" in text
        feed = app.tavern.query_one(LootFeed)
        assert "step 3,400" in feed.render().plain
        assert "📜quest" in str(feed.border_subtitle) and "⚱auto" in str(feed.border_subtitle)
        engine.send(snapshot())  # the engine's word replaces the saved one
        await settle(pilot)
        assert "step 1,500" in card.render().plain and "step 3,400" not in feed.render().plain
