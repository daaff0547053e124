"""The Quest board and quest moments in the game, against a fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, ProgressBar

from engine.protocol import messages as p
from tests.tui.conftest import FakeEngine, settle, snapshot, start
from tui.app import FRAME_SECONDS, RealmApp
from tui.screens.add_quest import AddQuestScreen
from tui.screens.quest_board import QuestBoardScreen
from tui.widgets.battle import BattlePanel
from tui.widgets.hero_card import HeroCard

ACTIVE = p.QuestInfo(name="greetings.jsonl", state="active", priority="normal", rows=24, epochs=2, seen=12)
QUEUED = p.QuestInfo(name="later.jsonl", state="queued", priority="low", rows=5)
FAILED = p.QuestInfo(
    name="broken.jsonl",
    state="failed",
    priority="normal",
    reason="line 3: invalid JSON (Expecting value at column 1)",
)
BOARD = (ACTIVE, QUEUED, FAILED)


def board(app: RealmApp) -> QuestBoardScreen:
    assert isinstance(app.screen, QuestBoardScreen)
    return app.screen


@pytest.mark.asyncio
async def test_board_shows_states_progress_and_reasons() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot, engine, snapshot(quests=BOARD))
        battle = app.tavern.query_one(BattlePanel)
        assert (
            "greetings.jsonl" in battle.quest and "12/48 rows" in battle.quest and "epoch 1/2" in battle.quest
        )
        await pilot.press("b")
        await settle(pilot)
        screen = board(app)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        assert [table.get_row_at(i)[2] for i in range(3)] == [
            "greetings.jsonl",
            "later.jsonl",
            "broken.jsonl",
        ]
        bar = screen.query_one(ProgressBar)
        assert bar.total == 48 and bar.progress == 12
        # live progress from step events reaches the open board's bar
        engine.send(p.StepCompleted(step=1501, steps=1, loss=1.0, smoothed_loss=1.1, lr=1e-3, grad_norm=1.0,
                                    tokens_per_s=3000, stats=snapshot().stats, quest=p.QuestInfo(**{**_fields(ACTIVE), "seen": 30})))  # fmt: skip
        await pilot.pause(2 * FRAME_SECONDS)
        assert bar.progress == 30
        engine.send(p.QuestBoard(BOARD))  # a board event redraws it at once
        await settle(pilot)
        assert bar.progress == 12
        await pilot.press("down", "down")  # the failed quest: its reason is shown
        await settle(pilot)
        reason = str(screen.query_one("#board-reason").render())
        assert "line 3: invalid JSON" in reason and "press t to retry" in reason


def _fields(info: p.QuestInfo) -> dict[str, object]:
    return {f: getattr(info, f) for f in info.__dataclass_fields__}


@pytest.mark.asyncio
async def test_board_keys_send_quest_commands() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot, engine, snapshot(quests=BOARD))
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("down")  # later.jsonl, low
        await pilot.press("plus")
        raised = await engine.expect(p.SetQuestPriority)
        assert raised == p.SetQuestPriority("later.jsonl", "normal")
        await pilot.press("c")
        assert await engine.expect(p.CancelQuest) == p.CancelQuest("later.jsonl")
        await pilot.press("down", "t")
        assert await engine.expect(p.RetryQuest) == p.RetryQuest("broken.jsonl")
        engine.send(p.QuestReply(False, "broken.jsonl refused: line 3: invalid JSON"))
        await settle(pilot)
        assert any("line 3" in n.message for n in app._notifications)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, QuestBoardScreen)


@pytest.mark.asyncio
async def test_add_a_file_from_the_board(tmp_path: Path) -> None:
    quest = tmp_path / "mine.jsonl"
    quest.write_text('{"text": "hello"}\n')
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot, engine, snapshot(quests=()))
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AddQuestScreen)
        app.screen.query_one(Input).value = str(quest)
        await pilot.press("enter")
        added = await engine.expect(p.AddQuest)
        assert added.path == str(quest) and added.priority == "normal"
        # refused: every window hears QuestRejected, this one also its reply; one toast here
        engine.send(p.QuestRejected("mine.jsonl", "line 1: no known format"))
        engine.send(p.QuestReply(False, "mine.jsonl refused: line 1: no known format"))
        await settle(pilot)
        assert sum("no known format" in n.message for n in app._notifications) == 1
        engine.send(p.QuestReply(False, "no quest named 'x'"))  # a reply with no broadcast: shown
        await settle(pilot)
        assert any("no quest named" in n.message for n in app._notifications)


@pytest.mark.asyncio
async def test_a_folder_or_a_missing_file_keeps_the_dialog_open_with_what_was_typed(tmp_path: Path) -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(quests=()))
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        for typed, said in ((str(tmp_path), "is a folder"), (str(tmp_path / "nope.jsonl"), "No such file")):
            app.screen.query_one(Input).value = typed
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, AddQuestScreen), typed
            assert app.screen.query_one(Input).value == typed
            assert any(said in n.message for n in app._notifications), typed
        sent = []
        while engine.conn.poll():
            sent.append(engine.conn.recv())
        assert not any(isinstance(m, p.AddQuest) for m in sent)


def test_a_dropped_file_path_is_read_as_the_terminal_pastes_it(tmp_path: Path) -> None:
    from tui.screens.add_quest import typed_path

    quest = tmp_path / "my quests" / "greet ings.jsonl"
    quest.parent.mkdir()
    quest.write_text('{"text": "hello"}\n')
    for pasted in (str(quest), f"'{quest}'", str(quest).replace(" ", "\\ "), f'"{quest}" '):
        assert typed_path(pasted.strip()) == quest, pasted
    assert typed_path("'unclosed") == Path("'unclosed").absolute()  # said missing, not a crash


@pytest.mark.asyncio
async def test_quest_moments_are_notifications_never_crashes() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(quests=(ACTIVE,)))
        engine.send(p.QuestRejected("junk.jsonl", "line 1: binary data (NUL byte), not JSON lines"))
        done = p.QuestInfo(
            **{**_fields(ACTIVE), "state": "done", "seen": 48, "loss_before": 3.0, "loss_after": 1.0}
        )
        engine.send(p.QuestCompleted(done, gold=100, loot="step-001600"))
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("NUL byte" in m for m in messages)
        assert any("+100 gold" in m for m in messages)
        assert app.tavern.query_one(HeroCard).stats.gold == 100
        assert app.tavern.query_one(BattlePanel).quest == ""  # no active quest any more


@pytest.mark.asyncio
async def test_the_cursor_follows_its_quest_when_the_board_re_sorts() -> None:
    """A priority change moves the row; the next key must still act on that quest."""
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot, engine, snapshot(quests=BOARD))
        await pilot.press("b")
        await settle(pilot)
        await pilot.press("down")  # later.jsonl
        raised = p.QuestInfo(**{**_fields(QUEUED), "priority": "high"})
        engine.send(p.QuestBoard((raised, ACTIVE, FAILED)))  # it moved to the top
        await settle(pilot)
        assert board(app).selected() == raised
        await pilot.press("c")
        assert await engine.expect(p.CancelQuest) == p.CancelQuest("later.jsonl")


@pytest.mark.asyncio
async def test_a_sparring_quest_shows_what_it_fixed() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    spar = p.QuestInfo(name="spar-bin-step-000046.jsonl", state="done", priority="high", rows=23,
                       loss_before=6.0, loss_after=3.9, outcome="fixed 7 of 10")  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(quests=(spar,)))
        await pilot.press("b")
        await settle(pilot)
        reason = str(board(app).query_one("#board-reason").render())
        assert "fixed 7 of 10 of the problems DIO had missed" in reason


@pytest.mark.asyncio
async def test_the_board_and_the_oracle_name_the_hero_of_this_slot() -> None:
    from tui.screens.oracle import OracleScreen

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(hero="bob", quests=BOARD))
        await pilot.press("b")
        await settle(pilot)
        said = str(board(app).query_one("#board-active").render())
        assert "BOB is on greetings.jsonl" in said and "DIO" not in said
        await pilot.press("escape", "o")
        await settle(pilot)
        assert isinstance(app.screen, OracleScreen)
        assert app.screen.query_one("#oracle-prompt", Input).placeholder.startswith("Ask BOB")
        await pilot.press("escape", "c")
        await settle(pilot)
        assert "BOB follows no campaign" in str(app.screen.query_one("#campaign-summary").render())
