"""The Vault and Oracle screens against a fake engine."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Input

from engine.protocol import messages as p
from tests.tui.conftest import FakeEngine, settle, snapshot, start
from tests.tui.test_app import visible_lines
from tui.app import RealmApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.oracle import OracleScreen
from tui.screens.vault import CompareScreen, VaultScreen
from tui.widgets.keyed_table import KeyedTable


def loot(step: int, bin_acc: float | None = None, **kw: object) -> p.LootInfo:
    skills = (p.SkillScore("bin", 1, bin_acc, 8),) if bin_acc is not None else ()
    fields: dict[str, object] = dict(step=step, name=f"step-{step:06d}", time=float(step), reason="auto",
                                     train_loss=1.0, val_loss=None, lr=1e-3, source="BIN L1",
                                     size_bytes=4_000_000, skills=skills, kept_because=("one of the 5 newest",))  # fmt: skip
    fields.update(kw)
    return p.LootInfo(**fields)  # type: ignore[arg-type]


LOOT = (loot(100, 0.25), loot(200, 0.75), loot(300))
LISTING = p.VaultListed(loot=LOOT, kept_bytes=12_000_000, budget_bytes=10**10, resume_from="step-000300")


def vault(app: RealmApp) -> VaultScreen:
    assert isinstance(app.screen, VaultScreen)
    return app.screen


@pytest.mark.asyncio
async def test_vault_sorts_by_a_skill_keeps_its_cursor_and_sends_actions() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(loot=LOOT))
        await pilot.press("v")
        await engine.expect(p.ListLoot)  # the screen asks for the full picture
        engine.send(LISTING)
        await settle(pilot)
        screen = vault(app)
        table = screen.query_one(KeyedTable)
        assert [table.get_row_at(i)[1].plain for i in range(3)] == [
            "step-000300",
            "step-000200",
            "step-000100",
        ]
        for _ in range(4):  # step → val loss → train loss → size → bin
            await pilot.press("t")
        await settle(pilot)
        assert "sorted by bin" in str(screen.query_one("#vault-summary").render())
        assert table.get_row_at(0)[1].plain == "step-000200"  # 75% first, unevaluated last
        assert screen.selected().name == "step-000300"  # type: ignore[union-attr]  # the cursor moved with it
        await pilot.press("up", "up")
        await pilot.press("p")
        assert await engine.expect(p.PinLoot) == p.PinLoot("step-000200", True)
        pinned = p.VaultListed(
            loot=(LOOT[0], loot(200, 0.75, pinned=True), LOOT[2]), resume_from="step-000300"
        )
        await pilot.press("down")  # step-000100
        engine.send(pinned)  # rows redraw: the cursor stays on step-000100
        await settle(pilot)
        assert screen.selected().name == "step-000100"  # type: ignore[union-attr]
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert await engine.expect(p.DeleteLoot) == p.DeleteLoot("step-000100")
        await settle(pilot)
        await pilot.press("m", "up", "c")  # mark 100, move to 200, compare
        assert await engine.expect(p.CompareLoot) == p.CompareLoot("step-000100", "step-000200")
        long = "Compute: add(①, ①). " + "Write the answer in the same digits. " * 5
        engine.send(p.LootCompared("step-000100", "step-000200", (("val_loss", 1.2, 1.1),),
                                   (p.ProblemDiff("bin", 1, "add(①, ⓪)", True, True, "①", "①", "①"),
                                    p.ProblemDiff("bin", 1, long, False, True, "①⓪", "①①", "①⓪"))))  # fmt: skip
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        fixed = app.screen.query_one("#compare-problems", KeyedTable).get_row_at(0)
        assert fixed[0].plain == "fixed" and "add(" in fixed[2]  # fixed first, whatever the order sent
        detail = " ".join(visible_lines(app.screen.query_one("#compare-detail")))
        assert "Write the answer in the same digits." in detail and "right answer: ①⓪" in detail
        assert "step-000100: ①①" in detail and "step-000200: ①⓪" in detail  # how 100 went wrong
        await pilot.press("down")
        await settle(pilot)
        assert "right answer: ①" in " ".join(visible_lines(app.screen.query_one("#compare-detail")))


@pytest.mark.asyncio
async def test_eval_suite_scores_show_on_the_loot_and_sort_the_vault() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    scored = (loot(100, metrics=(("capitals", 0.9),)), loot(200, metrics=(("capitals", 0.4),)), loot(300))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(loot=scored))
        await pilot.press("v")
        await engine.expect(p.ListLoot)
        engine.send(p.VaultListed(loot=scored, resume_from="step-000300"))
        await settle(pilot)
        screen = vault(app)
        for _ in range(4):  # step → val loss → train loss → size → suite capitals
            await pilot.press("t")
        await settle(pilot)
        assert "sorted by suite capitals" in str(screen.query_one("#vault-summary").render())
        table = screen.query_one(KeyedTable)
        assert [table.get_row_at(i)[1].plain for i in range(3)] == [
            "step-000100",
            "step-000200",
            "step-000300",
        ]
        await pilot.press("up", "up")  # the cursor stayed on step-000300, now last
        await settle(pilot)
        assert "suites: capitals 90%" in str(screen.query_one("#vault-detail").render())


@pytest.mark.asyncio
async def test_the_resume_point_cannot_be_deleted_from_the_screen() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(loot=LOOT))
        await pilot.press("v")
        await engine.expect(p.ListLoot)
        engine.send(LISTING)
        await settle(pilot)
        await pilot.press("d")  # the cursor starts on step-000300, the resume point
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)
        assert any("cannot be deleted" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_oracle_streams_signs_and_keeps_the_conversation() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(loot=LOOT))
        await pilot.press("o")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OracleScreen)
        screen.query_one("#oracle-prompt", Input).value = "0b1 + 0b1 = ?"
        await pilot.press("enter")
        ask = await engine.expect(p.Ask)
        assert ask.turns == ("0b1 + 0b1 = ?",) and ask.loot is None and ask.temperature == 0
        engine.send(p.OracleToken(ask.request_id, "0b"))
        await settle(pilot)
        lines = [str(w.render()) for w in screen.query(".oracle-line")]
        assert lines[-1].endswith("0b▌")  # the reply grows as tokens arrive
        engine.send(
            p.OracleAnswered(ask.request_id, "live", 1500, "abcdef0123456789", "0b10", 2, 0.1, 0.01, "live")
        )
        await settle(pilot)
        last = str(list(screen.query(".oracle-line"))[-1].render())
        assert "0b10" in last and "step 1,500" in last and "abcdef012345" in last
        screen.query_one("#oracle-prompt", Input).value = "and 0b10 + 0b1?"
        await pilot.press("enter")
        follow = await engine.expect(p.Ask)
        assert follow.turns == ("0b1 + 0b1 = ?", "0b10", "and 0b10 + 0b1?")  # multi-turn
        engine.send(p.CommandRejected("Ask", "no loot 'x' (loot: step-000100)"))
        await settle(pilot)
        assert "Refused" in str(list(screen.query(".oracle-line"))[-1].render())
        await pilot.press("ctrl+t")  # the timeline: base and a spread of loot
        asked = [await engine.expect(p.Ask) for _ in range(4)]
        assert [a.loot for a in asked] == ["base", "step-000100", "step-000200", "step-000300"]
        assert all(a.turns == ("0b1 + 0b1 = ?",) for a in asked)


@pytest.mark.asyncio
async def test_a_running_eval_shows_its_progress_and_its_result() -> None:
    from tui.screens.tasks import TasksScreen
    from tui.widgets.status_bar import StatusBar

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        running = p.TaskInfo(7, "eval", "eval at step 1,500", "running", 12, 70, "", 1.0, 2.0)
        engine.send(p.TaskUpdated(running))
        await settle(pilot)
        assert app.tavern.query_one(StatusBar).word == "EVALUATING 12/70"
        done = p.TaskInfo(
            7, "eval", "eval at step 1,500", "done", 70, 70, "BIN L2: 86% (2 of 3 ≥ 80%)", 1.0, 2.0, 9.0
        )
        engine.send(p.TaskUpdated(done))
        await settle(pilot)
        assert app.tavern.query_one(StatusBar).word == "TRAINING"
        assert any("BIN L2: 86%" in n.message for n in app._notifications)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        row = app.screen.query_one(KeyedTable).get_row_at(0)
        assert row[1] == "eval at step 1,500" and row[4].startswith("BIN L2")
        long = "BIN L2: 86% (2 of 3 ≥ 80%) · SY L1: 80% (1 of 3 ≥ 80%) · val loss 0.048 · capitals 0.91"
        engine.send(p.TaskUpdated(replace(done, id=8, label="eval at step 1,600", result=long)))
        await settle(pilot)  # the newest task is on top; the cursor stays on task 7
        detail = app.screen.query_one("#tasks-detail")
        assert str(detail.render()) == "eval at step 1,500: BIN L2: 86% (2 of 3 ≥ 80%)"
        await pilot.press("up")
        await settle(pilot)
        assert str(detail.render()) == f"eval at step 1,600: {long}"  # whole, though the column is cut


@pytest.mark.asyncio
async def test_the_loot_feed_and_the_vault_lead_to_the_numbers_at_a_loot() -> None:
    from tui.screens.stats import StatsScreen
    from tui.widgets.history_chart import HistoryChart
    from tui.widgets.loot_feed import LootFeed

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    graded = loot(200, 0.75, val_loss=0.61, metrics=(("capitals", 0.5),))
    history = tuple((s, 0.5 + s / 1000) for s in range(150, 260, 10))  # grad norm by step
    async with app.run_test(size=(80, 24)) as pilot:
        evals = (p.SkillPoint(100, "bin", 1, 0.25), p.SkillPoint(200, "bin", 1, 0.75))
        everything = snapshot(
            loot=(loot(100, 0.25), graded, loot(300)), grad_history=history, skill_history=evals
        )
        await start(pilot, engine, everything)
        feed = app.tavern.query_one(LootFeed)
        await pilot.click(LootFeed, offset=(feed.content_region.x - feed.region.x + 3, 2))  # row 2: step 200
        await settle(pilot)
        screen = vault(app)
        assert screen.selected() is not None and screen.selected().name == "step-000200"  # type: ignore[union-attr]
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, StatsScreen)
        numbers = str(app.screen.query_one("#stats-numbers").render())
        assert "At step-000200 (step 200, ⚱ auto): loss 1.000 · val 0.610 · lr 0.001" in numbers
        assert "grad norm 0.70" in numbers and "BIN L1 75%" in numbers and "capitals 50%" in numbers
        assert "step-000200" in str(app.screen.query_one(HistoryChart).border_subtitle)  # the marker
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, VaultScreen)  # back where the player came from


def test_realm_vault_compare_prints_how_each_wrong_answer_went_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tui.cli.vault import print_comparison

    fixed = p.ProblemDiff("bin", 1, "add(①, ⓪)", False, True, "①", "⓪⓪", "①")
    both = p.ProblemDiff("bin", 1, "add(⓪, ⓪)", True, True, "⓪", "⓪", "⓪")
    print_comparison(p.LootCompared("step-1", "step-2", (("step", 1, 2),), (fixed, both)), as_json=False)
    out = capsys.readouterr().out
    assert "right: ① · step-1: ⓪⓪ · step-2: ①" in out
    assert out.count("right:") == 1  # both right: nothing to explain
