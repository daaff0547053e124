"""A screen is pushed at once but mounts a moment later (its table has no columns until
then). Events and frames that arrive in that moment must neither crash the app nor draw on
the half-built screen; once mounted, it shows what arrived. Found live: a level's gold
reached the Market between `$` and its mount, and the app died (ValueError: more values
than columns)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.protocol import messages as p
from tests.tui.conftest import STATS, FakeEngine, settle, snapshot, start
from tests.tui.test_app import visible_lines
from tests.tui.test_market import shop_info
from tui.app import RealmApp
from tui.messages import EngineMessage

OPENED_BY = (
    "market",
    "stats",
    "quest_board",
    "log_book",
    "armory",
    "achievements",
    "tasks",
    "campaign",
    "vault",
    "guild",
    "oracle",
)


@pytest.mark.asyncio
@pytest.mark.parametrize("action", OPENED_BY)
async def test_events_between_push_and_mount_wait_for_the_screen(action: str, tmp_path: Path) -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        wares = shop_info(tmp_path, 0)
        await start(pilot, engine, snapshot(shop=wares))
        getattr(app, f"action_{action}")()
        pushed = app.screen
        assert not pushed.is_mounted  # the moment this test is about
        richer = replace(STATS, step=1501, gold=170)
        news = (
            p.StepCompleted(1501, 1, 1.0, 1.0, 1e-3, 0.5, 100.0, richer),
            snapshot(stats=richer, shop=wares),
            p.AchievementUnlocked(
                p.AchievementInfo("first-loot", "Treasure hunter", "Save a first loot", 1501)
            ),
            p.TaskUpdated(
                p.TaskInfo(3, "eval", "eval at step 1,500", "done", 70, 70, "BIN L2: 86%", 1.0, 2.0, 3.0)
            ),
            p.LogLine("Loot! Checkpoint step-001501", kind="loot", step=1501),
        )
        for event in news:  # no await in between: delivered before the screen mounts
            await app.on_engine_message(EngineMessage(event))
        app._frame()
        await settle(pilot)
        assert app.screen is pushed and pushed.is_mounted
        if action == "market":  # the next frame draws the purse the level paid into
            engine.send(p.StepCompleted(1502, 1, 1.0, 1.0, 1e-3, 0.5, 100.0, replace(richer, step=1502)))
            await pilot.pause(0.7)
            await settle(pilot)
            assert "Purse: 170 gold" in " ".join(visible_lines(pushed.query_one("#market-summary")))
