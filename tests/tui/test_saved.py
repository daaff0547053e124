"""A returning hero's first frame comes from the hero.json a real engine wrote (its stats
and newest loot), before the engine has said a word; the engine's snapshot then wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from tests.conftest import make_hero, run_worker
from tests.tui.conftest import FakeEngine, settle, snapshot
from tui.app import RealmApp
from tui.saved import saved_state
from tui.widgets.hero_card import HeroCard
from tui.widgets.loot_feed import LootFeed


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, hatchling_dir: Path) -> SaveDir:
    """A hero a real engine trained 30 steps (loot every 10) and stopped."""
    save, config = make_hero(tmp_path_factory.mktemp("saves"), hatchling_dir)
    run_worker(save, config, max_steps=30)
    return save


def test_saved_state_is_what_the_engine_wrote(trained: SaveDir) -> None:
    status = json.loads(trained.status.read_text())
    state = saved_state(trained)
    assert state.stats.step == status["step"] == 30
    assert state.stats.train_loss == status["loss"] and state.stats.gold == status["gold"]
    assert [x.step for x in state.loot] == [10, 20, 30]
    assert state.loot[-1].train_loss is not None and state.hero == "dio"


def test_a_new_or_broken_save_gives_a_plain_first_frame(tmp_path: Path) -> None:
    assert saved_state(SaveDir(tmp_path / "new")).stats == p.HeroStats()
    save = SaveDir(tmp_path / "dio")
    save.create()
    save.status.write_text('{"step": 12')  # cut mid-write
    assert saved_state(save).stats.step == 0
    save.status.write_text(json.dumps({"step": 40, "recent_loot": [{"step": "not a loot"}]}))
    state = saved_state(save)
    assert state.stats.step == 40 and state.loot == []  # a damaged loot list only loses the loot


@pytest.mark.asyncio
async def test_the_first_frame_is_the_saved_hero_until_the_engine_speaks(trained: SaveDir) -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector, saved=saved_state(trained))
    async with app.run_test(size=(80, 24)) as pilot:
        await engine.expect(p.Hello)  # connected, but no snapshot yet
        await settle(pilot)
        card = app.tavern.query_one(HeroCard)
        assert "step 30" in card.render().plain
        feed = app.tavern.query_one(LootFeed)
        assert "step 30" in feed.render().plain and "step 10" in feed.render().plain
        assert "no loot yet" not in feed.render().plain
        assert "⚱auto" in str(feed.border_subtitle)  # the legend names the icons in view
        engine.send(snapshot())  # the engine's word replaces the saved one
        await settle(pilot)
        assert "step 1,500" in card.render().plain and "no loot yet" in feed.render().plain
