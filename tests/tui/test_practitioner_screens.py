"""The log book (l), the stats screen (i), the Armory (m) and the bell, at 80×24 against a
fake engine."""

from __future__ import annotations

import json

import pytest

from engine.protocol import messages as p
from tests.tui.conftest import STATS, FakeEngine, settle, snapshot, start
from tests.tui.test_app import visible_lines
from tui.app import RealmApp

CONFIG = {
    "name": "dio",
    "train": {"lr": 0.002, "schedule": "cosine", "warmup_steps": 50, "decay_steps": 20000, "grad_clip": 1.0},
    "game": {"skills": {"bin": 1.0, "sy": 0.3}},
}
ROWS = (
    p.LogLine("DIO wakes on cpu at step 0 (base model): 3.4M params", "info", "run", 0, 1.0e9),
    p.LogLine("LEVEL UP! DIO reached level 1", "info", "level", 1000, 1.0e9),
    p.LogLine("Loot! Checkpoint step-001000 (auto)", "info", "loot", 1000, 1.0e9),
    p.LogLine("The engine died at step 1210; resuming from loot step-001200", "warning", "crash", 1200, 1e9),
    p.LogLine("Eval at step 1300: BIN L2: 62% · val loss 0.410", "info", "eval", 1300, 1.0e9),
)


def table_texts(app: RealmApp) -> list[str]:
    from tui.widgets.keyed_table import KeyedTable

    table = app.screen.query_one(KeyedTable)
    return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


@pytest.mark.asyncio
async def test_log_book_reads_the_engine_log_and_filters_by_kind() -> None:
    from tui.screens.log_book import LogBookScreen

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("l")
        asked = await engine.expect(p.ReadLog)
        assert asked.limit > 0
        assert isinstance(app.screen, LogBookScreen)
        engine.send(p.LogRead(rows=ROWS, total=len(ROWS)))
        await settle(pilot)
        assert len(table_texts(app)) == 5
        assert "5 of 5 events" in " ".join(visible_lines(app.screen.query_one("#log-summary")))
        await pilot.press("f")  # first filter: level
        await settle(pilot)
        assert table_texts(app) == ["LEVEL UP! DIO reached level 1"]
        await pilot.press(
            "f", "f", "f", "f", "f", "f", "f"
        )  # loot quest eval campaign achievement watchdog crash
        await settle(pilot)
        assert table_texts(app) == [ROWS[3].text]
        await pilot.press("shift+f", "shift+f", "shift+f", "shift+f")  # back: watchdog … campaign, eval
        await settle(pilot)
        assert table_texts(app) == [ROWS[4].text]
        # a new line arrives while the book is open: it joins (when it passes the filter)
        engine.send(p.LogLine("Eval at step 1400: BIN L2: 70% · val loss 0.400", "info", "eval", 1400, 1e9))
        await settle(pilot)
        assert table_texts(app)[-1].startswith("Eval at step 1400")
        detail = " ".join(visible_lines(app.screen.query_one("#log-detail")))
        assert "step 1,400" in detail and "val loss 0.400" in detail  # the whole line, below
        await pilot.press("f", "f", "f", "f", "f", "f", "f")  # round to "all"
        await pilot.press("w")
        await settle(pilot)
        assert table_texts(app) == [ROWS[3].text]  # warnings only


@pytest.mark.asyncio
async def test_stats_screen_shows_the_practitioner_numbers_and_an_eval_chart() -> None:
    from tui.screens.stats import StatsScreen
    from tui.widgets.history_chart import HistoryChart

    history = (
        p.SkillPoint(100, "bin", 1, 0.5),
        p.SkillPoint(200, "bin", 1, 0.9),
        p.SkillPoint(200, "sy", 1, 0.1),
    )
    snap = snapshot(
        config_json=json.dumps(CONFIG),
        skill_history=history,
        lr_history=((1499, 0.0019), (1500, 0.00189)),
        grad_history=((1499, 0.8), (1500, 1.7)),
        stats=p.HeroStats(step=1500, tokens_seen=1_234_567, steps_per_minute=42.0),
    )
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snap)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, StatsScreen)
        numbers = "\n".join(visible_lines(app.screen.query_one("#stats-numbers")))
        assert "lr 1.89e-03 now" in numbers and "cosine from 2e-03, warmup 50" in numbers
        assert "grad norm 1.700 (clipped) · clip at 1" in numbers
        assert "tokens seen 1,234,567" in numbers and "42 steps/min" in numbers
        chart = app.screen.query_one(HistoryChart)
        assert chart.series == {"BIN": [(100, 50.0), (200, 90.0)], "SY": [(200, 10.0)]}
        assert chart.y_range == (0.0, 100.0) and "step" in str(chart.border_title)
        skill = p.SkillInfo("sy", "Syllables", "🎵", "magenta", 1, 5, 0.8, 3, (0.1, 0.3), ())
        engine.send(p.EvalCompleted(300, 0.5, 0.3, 16, skill, level=1))
        await settle(pilot)
        assert chart.series["SY"] == [(200, 10.0), (300, 30.0)]  # the chart follows the evals
        engine.send(p.StepCompleted(1501, 1, 1.0, 1.1, 0.00188, 0.5, 3000.0, STATS))
        await settle(pilot, rounds=25)  # the numbers follow the frame timer
        numbers = "\n".join(visible_lines(app.screen.query_one("#stats-numbers")))
        assert "lr 1.88e-03 now" in numbers and "grad norm 0.500 · clip" in numbers
        await pilot.press("g")
        await settle(pilot)
        assert list(chart.series) == ["lr"] and chart.series["lr"][-1] == (1501, 0.00188)


@pytest.mark.asyncio
async def test_armory_checks_a_value_live_and_saves_it_through_the_engine() -> None:
    from textual.widgets import Input

    from tui.screens.armory import ArmoryScreen
    from tui.widgets.keyed_table import KeyedTable

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(config_json=json.dumps(CONFIG), memory_plan="est. 0.2 GiB RAM"))
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ArmoryScreen)
        table = app.screen.query_one(KeyedTable)
        table.move_cursor(row=table.get_row_index("train.lr"))
        await settle(pilot)
        assert "Peak learning rate" in " ".join(visible_lines(app.screen.query_one("#armory-help")))
        await pilot.press("enter")
        await settle(pilot)
        box = app.screen.query_one(Input)
        assert box.display and box.value == "0.002"
        box.value = "7"
        check = await engine.expect(p.SetConfig)
        assert check == p.SetConfig("train.lr", "7", dry_run=True)
        engine.send(p.ConfigReply(False, "train.lr = 7: lr must be in (0, 1), got 7.0", dry_run=True))
        await settle(pilot)
        assert "lr must be in (0, 1)" in " ".join(visible_lines(app.screen.query_one("#armory-check")))
        await pilot.press("enter")  # saved anyway: refused, and the box keeps what was typed
        sent = await engine.expect(p.SetConfig)
        while sent.dry_run:
            sent = await engine.expect(p.SetConfig)
        engine.send(p.ConfigReply(False, "train.lr = 7: lr must be in (0, 1), got 7.0"))
        await settle(pilot)
        assert box.display and box.value == "7" and app.screen.editing == "train.lr"
        box.value = "5e-4"
        await settle(pilot, rounds=15)
        await pilot.press("enter")
        sent = await engine.expect(p.SetConfig)
        while sent.dry_run:  # the check of "5e-4" may come first
            sent = await engine.expect(p.SetConfig)
        assert sent == p.SetConfig("train.lr", "5e-4")
        changed = {**CONFIG, "train": {**CONFIG["train"], "lr": 0.0005}}
        engine.send(
            p.ConfigReply(True, "train.lr: 0.002 → 0.0005 (from the next step)", json.dumps(changed), "now")
        )
        await settle(pilot)
        assert table.get_row_at(table.get_row_index("train.lr"))[1] == "0.0005"
        assert app.state.config["train"]["lr"] == 0.0005
        assert "from the next step" in " ".join(visible_lines(app.screen.query_one("#armory-check")))
        assert not box.display  # saved: the box closes


@pytest.mark.asyncio
async def test_the_bell_rings_only_when_the_player_turned_it_on() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(config_json=json.dumps(CONFIG)))
        engine.send(p.LevelledUp(level=2, step=2000))
        await settle(pilot)
        assert rings == []  # off by default
        bell_on = {**CONFIG, "game": {**CONFIG["game"], "bell": True}}
        engine.send(p.ConfigReply(True, "game.bell: false → true", json.dumps(bell_on), "now"))
        engine.send(p.LevelledUp(level=3, step=3000))
        engine.send(p.WatchdogIntervened(step=3001, kind="skip", reason="spike", lr_scale=1.0))
        await settle(pilot)
        assert rings == [1]  # the level-up rings; a skipped spike is routine


@pytest.mark.asyncio
async def test_damage_numbers_rise_and_fade_and_the_portrait_grows_with_the_level() -> None:
    from tui.widgets.battle import BattlePanel, portrait

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(stats=p.HeroStats(step=1500, level=5)))
        panel = app.tavern.query_one(BattlePanel)
        panel.float_timer.pause()  # the test moves the numbers itself
        engine.send(p.StepCompleted(1501, 1, 0.348, 1.1, 0.002, 0.5, 3000.0, p.HeroStats(step=1501, level=5)))
        await settle(pilot, rounds=25)  # the frame timer puts the step on screen

        def float_row() -> int | None:
            rows = [str(line) for line in panel.render().split("\n")]
            return next((i for i, row in enumerate(rows) if "0.348" in row and "takes" not in row), None)

        assert panel.floaters == [(0.348, 0)]
        fresh = float_row()
        assert fresh is not None
        bar_line = str(panel.render().split("\n")[fresh + 1])
        assert "🛡" in bar_line and "⚔" in bar_line  # right above a knight's HP bar
        panel._rise()
        assert float_row() == fresh - 1  # one row up, faded
        panel._rise()
        assert float_row() is None  # gone
        assert "👑" in portrait(10, 0) and "⚔" not in portrait(1, 0)
