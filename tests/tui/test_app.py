"""The game against a fake engine on the other end of a Pipe (App.run_test + Pilot)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.binding import Binding
from textual.geometry import Region
from textual.widgets import Label

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from tests.tui.conftest import STATS, FakeEngine, settle, snapshot, start
from tui.app import ACHIEVEMENTS_GATHERED_S, SCREEN_KEYS, RealmApp, help_text, keys_shown
from tui.cli.play import ignored_launch_flags
from tui.screens.engine_down import EngineDownScreen
from tui.screens.help import KEY_WIDTH, HelpScreen
from tui.screens.quit import QuitScreen
from tui.screens.tavern import TavernScreen
from tui.widgets.battle import BattlePanel
from tui.widgets.hero_card import HeroCard
from tui.widgets.loot_feed import LootFeed
from tui.widgets.status_bar import StatusBar


def visible_lines(widget: Any) -> list[str]:
    """The lines a widget shows on screen (what the terminal would draw), trailing space cut."""
    size = widget.outer_size  # the border and padding too: what the terminal draws
    lines = widget.render_lines(Region(0, 0, size.width, size.height))
    return [strip.text.rstrip() for strip in lines]


def status_word(app: RealmApp) -> str:
    return app.tavern.query_one(StatusBar).word


def footer_space(app: RealmApp) -> str:
    shown = [b.description for b in RealmApp.BINDINGS if isinstance(b, Binding) and b.key == "space"]
    live = [d for d in shown if app.check_action("toggle_pause", (d.lower(),))]
    assert len(live) == 1, live
    return live[0]


@pytest.mark.asyncio
async def test_ctrl_q_leaves_dio_training_and_says_goodbye() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("ctrl+q")
        await engine.expect(p.Goodbye)
    assert app.return_value == "background"  # play.py then prints "DIO keeps training…"


@pytest.mark.asyncio
async def test_paused_shows_only_after_the_engine_says_so() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        assert status_word(app) == "TRAINING"
        await pilot.press("space")
        await engine.expect(p.Pause)
        await settle(pilot)
        assert status_word(app) == "PAUSING…"  # asked, not yet confirmed
        assert footer_space(app) == "Pause"
        engine.send(p.Paused(step=1500))
        await settle(pilot)
        assert status_word(app) == "PAUSED"
        assert footer_space(app) == "Resume"  # the footer says what space does now
        await pilot.press("space")
        await engine.expect(p.Resume)
        engine.send(p.Resumed(step=1500))
        await settle(pilot)
        assert status_word(app) == "TRAINING"


@pytest.mark.asyncio
async def test_events_update_the_hero_card_and_feeds() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        card = app.tavern.query_one(HeroCard)
        assert card.stats.step == 1500
        stats = p.HeroStats(step=2000, level=2, atk=1.1, train_loss=0.9, acc=0.75)
        engine.send(
            p.StepCompleted(
                step=2000,
                steps=3,
                loss=0.91,
                smoothed_loss=0.9,
                lr=1e-3,
                grad_norm=1.0,
                tokens_per_s=3000,
                stats=stats,
            )
        )
        engine.send(p.LevelledUp(level=2, step=2000))
        loot = p.LootInfo(
            step=2000,
            name="step-002000",
            time=0,
            reason="manual",
            train_loss=0.9,
            val_loss=None,
            lr=1e-3,
            source="ARI L2",
        )
        engine.send(p.CheckpointSaved(loot=loot))
        await settle(pilot)
        assert card.stats == stats
        assert "Level 2" in str(card.render()) and "grade" not in str(card.render())  # none yet
        assert app.tavern.query_one(BattlePanel).damage == pytest.approx(0.91)
        assert app.tavern.query_one(LootFeed).loot == (loot,)
        assert app.state.last_loot_step == 2000
        engine.send(
            p.StepCompleted(2001, 1, 0.9, 0.9, 1e-3, 1.0, 3000, replace(stats, step=2001, grade="B 84"))
        )
        engine.send(p.WatchdogIntervened(2001, "rollback", "loss is not a number", 0.5, "step-001800"))
        await settle(pilot)
        assert "grade B 84" in str(card.render())
        assert "Back to step-001800" in str(app.tavern.query_one(BattlePanel).render())


@pytest.mark.asyncio
async def test_save_and_eval_keys_send_their_commands() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("s")
        await engine.expect(p.SaveNow)
        await pilot.press("e")
        await engine.expect(p.RunEval)


@pytest.mark.asyncio
async def test_ctrl_c_asks_as_q_does_and_twice_leaves_dio_training() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")  # stay
        await settle(pilot)
        assert not isinstance(app.screen, QuitScreen)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("ctrl+c")
        await engine.expect(p.Goodbye)
        await settle(pilot)
    assert app.return_value == "background"


@pytest.mark.asyncio
async def test_quit_to_background_says_goodbye() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, QuitScreen)
        dialog = app.screen.query_one("#quit-dialog")
        for label in app.screen.query(Label):  # at 80x24 every word of the dialog is on screen
            assert label.region.right <= dialog.content_region.right, str(label.content)
            words = " ".join(visible_lines(label)).split()
            assert words == str(label.content).split(), words
        assert "DIO can keep training" in str(app.screen.query_one("#quit-body", Label).content)
        await pilot.press("b")
        await engine.expect(p.Goodbye)
        await settle(pilot)
    assert app.return_value == "background"


@pytest.mark.asyncio
async def test_quit_with_stop_waits_for_stopped() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("s")
        await engine.expect(p.Stop)
        await settle(pilot)
        assert app.is_running  # still saving
        engine.send(p.Stopped(step=1500, last_loot_step=1500))
        await settle(pilot)
    assert app.return_value == "stopped"


@pytest.mark.asyncio
async def test_engine_death_is_a_game_state_with_restart() -> None:
    engine = FakeEngine()
    restarts: list[bool] = []
    app = RealmApp(engine.connector, restart_engine=lambda: restarts.append(True))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        engine.send(p.EngineFailed("RuntimeError: out of dragons", "Traceback ..."))
        engine.conn.close()
        await settle(pilot, 10)
        assert isinstance(app.screen, EngineDownScreen)
        assert status_word(app) == "ENGINE DOWN"
        assert app.screen.error == "RuntimeError: out of dragons"
        # Restart: a new pipe stands in for the new engine process.
        fresh = FakeEngine()
        engine.ui_end = fresh.ui_end
        engine.conn = fresh.conn
        await pilot.press("r")
        await start(pilot, engine)
        assert restarts == [True]
        assert status_word(app) == "TRAINING"


@pytest.mark.asyncio
async def test_an_engine_that_would_not_start_says_what_to_change() -> None:
    """A start refused (a model folder whose weights do not load): the dialog says the
    engine would not start and why, and offers to start again, not "restart from loot"."""
    from textual.widgets import Button, Label

    from tui.link import DownReport

    engine = FakeEngine()
    why = "cannot load a causal LM from /models/x: header too small"
    app = RealmApp(engine.connector, down_report=lambda: DownReport("…\nrealm engine: " + why, why))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        engine.conn.close()
        await settle(pilot, 10)
        assert isinstance(app.screen, EngineDownScreen) and app.screen.refused
        title = str(app.screen.query_one("#down-title", Label).render())
        assert title == "☠ The engine would not start"
        assert why in str(app.screen.query_one("#down-error", Label).render())
        assert str(app.screen.query_one("#restart", Button).label) == "(r) Start it again"


@pytest.mark.asyncio
async def test_engine_down_shows_the_line_that_says_what_is_wrong() -> None:
    """A long traceback: the screen shows its last lines (the error), not its top."""
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    trace = "Traceback (most recent call last):\n" + "".join(
        f'  File "engine/x.py", line {i}, in f{i}\n    call_{i}()\n' for i in range(40)
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        engine.send(
            p.EngineFailed("ValueError: the model folder has no weights", trace + "ValueError: no weights")
        )
        engine.conn.close()
        await settle(pilot, 10)
        assert isinstance(app.screen, EngineDownScreen)
        assert app.screen.detail.splitlines()[-1] == "ValueError: no weights"
        assert "Traceback" not in app.screen.detail and len(app.screen.detail.splitlines()) <= 8


@pytest.mark.asyncio
async def test_a_key_pressed_while_dio_wakes_up_is_not_told_the_engine_is_down() -> None:
    def not_up_yet() -> Any:
        raise ConnectionRefusedError("the engine's socket is not there yet")  # loading torch

    waking = RealmApp(not_up_yet, connect_timeout=60)
    async with waking.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        said = [n.message for n in waking._notifications]
        assert said == ["DIO is still waking up: try again in a moment."], said
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        engine.conn.close()
        await settle(pilot, 10)
        app.clear_notifications()
        app.action_save_loot()
        await settle(pilot)
        assert [n.message for n in app._notifications] == ["The engine is down: nothing to save."]


@pytest.mark.asyncio
async def test_what_the_engine_repaired_at_start_is_said_on_screen() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    crash = "The engine died at step 99; resuming from loot 82 (17 steps replayed)"
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(warnings=(crash,)))
        assert [n.message for n in app._notifications] == [crash]


@pytest.mark.asyncio
async def test_launch_flags_a_running_engine_cannot_take_are_said_on_the_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`realm play --gpus 2 --fsdp` attaches to an engine already running on one rank:
    the player is told the flags wait for its next start; asked what it runs, nothing."""
    save = SaveDir(tmp_path / "dio")
    save.create()
    monkeypatch.setattr(SaveDir, "engine_pid", lambda self: 4242)
    asked = argparse.Namespace(gpus=2, fsdp=True)
    save.status.write_text(json.dumps({"ranks": 1, "sharded": False}))
    notice = ignored_launch_flags(save, asked)
    assert "already training on 1 rank;" in notice and "--gpus 2 --fsdp takes effect" in notice
    save.status.write_text(json.dumps({"ranks": 2, "sharded": True}))
    assert ignored_launch_flags(save, asked) == ""
    assert ignored_launch_flags(save, argparse.Namespace(gpus=1, fsdp=False)) == ""  # just watching
    engine = FakeEngine()
    app = RealmApp(engine.connector, notice=notice)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot())
        assert [n.message for n in app._notifications] == [notice]


def every_screen_class() -> list[type]:
    """Every Screen and ModalScreen the app opens, defined under tui/screens/."""
    import importlib
    import inspect
    import pkgutil

    from textual.screen import Screen

    import tui.screens

    found = []
    for module_info in pkgutil.iter_modules(tui.screens.__path__):
        module = importlib.import_module(f"tui.screens.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__ and not cls.__subclasses__():
                found.append(cls)  # a base of other screens (SubScreen) is never opened itself
    assert len(found) >= 10
    return found


@pytest.mark.asyncio
async def test_help_lists_every_binding_and_palette_has_every_action() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        described = {d for _, _, d in app.screen.keys}
        assert {help_text(b) for b in RealmApp.BINDINGS} <= described  # type: ignore[arg-type]
        listed = set(app.screen.keys)
        # Keys as a player types them, narrow enough that no action is cut at 80 columns.
        assert ("Help", "esc ? q", "Close help") in listed
        assert all(len(key) <= KEY_WIDTH and "escape" not in key for _, key, _ in listed)
        scroll = app.screen.query_one("#help-keys")
        assert scroll.has_focus and scroll.max_scroll_y > 0  # more keys than rows: it scrolls
        await pilot.press("end")
        await settle(pilot)
        assert scroll.scroll_y == scroll.max_scroll_y
        for screen in every_screen_class():  # a new screen's keys cannot be forgotten
            title = next((t for t, cls in SCREEN_KEYS if cls is screen), None)
            assert title is not None or screen is TavernScreen, f"{screen.__name__} is not in SCREEN_KEYS"
            for b in screen.BINDINGS:
                if title is not None and isinstance(b, Binding):
                    assert (title, keys_shown(app, b), help_text(b)) in listed
        titles = " ".join(c.title for c in app.get_system_commands(app.screen)).lower()
        for word in (
            "pause",
            "save loot",
            "evaluate",
            "guild",
            "quest board",
            "add a quest",
            "keys",
            "leave",
            "restart",
        ):
            assert word in titles
        counts = Counter(c.title for c in app.get_system_commands(app.screen))
        assert not [t for t, n in counts.items() if n > 1]
        assert "Keys" not in counts and "Quit" not in counts  # ours are "Show keys", "Leave the game"


@pytest.mark.asyncio
async def test_away_summary_and_80x24_screen() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    away = p.AwaySummary(seconds=600, steps_gained=1200, levels_gained=1, loot_steps=(1000,), restarted=True,
                         skill_levels=("BIN L3",), quests_done=1, gold_gained=100, evals=12, crashes=1)  # fmt: skip
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(away=away))
        welcome = next(n.message for n in app._notifications if n.title == "Welcome back")
        assert welcome == (
            "While you were away (10 min): DIO fought 1,200 steps, 1 level up, reached BIN L3, "
            "1 quest done, +100 gold, 12 evals, 1 loot; the engine crashed once and resumed from loot."
        )
        screen = app.export_screenshot()
        for text in ("Level", "1,500", "TRAINING", "3,210"):
            assert text in screen.replace("&#160;", " "), text
        assert "+1,200 steps" in app.tavern.query_one(BattlePanel).banner


def shown(panel: Any, selector: str) -> str:
    """The text a Static in the panel displays."""
    return str(panel.query_one(selector).content)


def skill_info(level: int = 2, evals: tuple[float, ...] = (0.9, 0.5), correct: bool = False) -> p.SkillInfo:
    return p.SkillInfo(
        id="bin",
        name="Binary",
        icon="🧮",
        colour="#F59E0B",
        level=level,
        max_level=30,
        threshold=0.8,
        gate_window=3,
        evals=evals,
        mastered=tuple(range(1, level)),
        sample_prompt="Compute: add(①, ①)",
        sample_answer="add(①, ①) = ①⓪",
        sample_correct=correct,
    )


@pytest.mark.asyncio
async def test_guild_shows_trees_gates_and_samples() -> None:
    from tui.screens.guild import GuildScreen
    from tui.widgets.skill_panel import SkillPanel

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(skills=(skill_info(),)))
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuildScreen)
        panel = app.screen.query_one(SkillPanel)
        assert "1 of 3 evals ≥ 80%" in shown(panel, "#gate")
        assert panel.border_title is not None and "level 2 / 30" in panel.border_title
        assert "DIO ✘" in shown(panel, "#sample")
        assert "✔1 ▶2 ·3" in shown(panel, "#tree")
        # An eval updates the open Guild; a skill level-up is a moment on screen.
        engine.send(
            p.EvalCompleted(
                step=300,
                val_loss=1.0,
                accuracy=0.9,
                problems=50,
                skill=skill_info(level=3, evals=(), correct=True),
            )
        )
        engine.send(p.SkillLevelledUp(skill="bin", name="Binary", level=3, step=300))
        await settle(pilot)
        assert panel.info is not None and panel.info.level == 3
        assert "DIO ✔" in shown(panel, "#sample") and "level 3 / 30" in str(panel.border_title)
        assert "0 of 3 evals" in shown(panel, "#gate")
        assert "no eval at this level yet" in shown(panel, "#history")  # no bars before an eval
        assert not any(bar in shown(panel, "#history") for bar in "▁▂▃▄▅▆▇█")
        assert "SKILL UP" in app.tavern.query_one(BattlePanel).banner
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is app.tavern


@pytest.mark.asyncio
async def test_guild_history_has_a_fixed_scale_and_a_long_answer_stays_on_one_line() -> None:
    from tui.screens.guild import GuildScreen
    from tui.widgets.skill_panel import SkillPanel

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    long_answer = '{"solutions": [' + ", ".join(f'["syl{i}", "la{i}"]' for i in range(30)) + "]}"
    info = replace(skill_info(evals=(0.0, 0.5, 0.9)), sample_answer=long_answer)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(skills=(info,)))
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuildScreen)
        panel = app.screen.query_one(SkillPanel)
        history = shown(panel, "#history")
        assert "0% ┤ ▄█├ 100%" in history  # 0% draws nothing, 50% half, 90% a full bar
        sample = panel.query_one("#sample")
        assert sample.size.height == 2  # the prompt and DIO's answer: no wrapped JSON
        assert sample.size.width <= 80


@pytest.mark.asyncio
async def test_guild_opened_before_the_snapshot_fills_in() -> None:
    from tui.screens.guild import GuildScreen
    from tui.widgets.skill_panel import SkillPanel

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await engine.expect(p.Hello)
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuildScreen) and not app.screen.query(SkillPanel)
        engine.send(snapshot(skills=(skill_info(),)))
        await settle(pilot, 8)
        assert [panel.id for panel in app.screen.query(SkillPanel)] == ["skill-bin"]


@pytest.mark.asyncio
async def test_gear_panel_shows_no_gpu_or_the_gpu() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        card = app.tavern.query_one(HeroCard)
        assert card.gear == "⚙ no GPU"
        gpu = p.GpuStats(available=True, name="NVIDIA H100 80GB HBM3", utilization=87, memory_used=41 * 2**30,
                         memory_total=80 * 2**30, temperature=None, power_watts=310.0)  # fmt: skip
        engine.send(p.GpuTelemetry(gpu))
        await pilot.pause(1.2)  # telemetry redraws with the next frame
        assert card.gear == "⚙ H100 87% · mana 41.0/80.0 GiB · 310 W"  # no temperature: left out


@pytest.mark.asyncio
async def test_at_80x24_the_footer_shows_every_key_it_lists() -> None:
    """On the Tavern and on every screen over it, each key the footer lists is on screen:
    none pushed off the right edge or under the palette's key."""
    from textual.widgets._footer import FooterKey

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        for screen_key in ("", "b", "g", "v", "o", "t", "a", "c", "l", "i", "m", "dollar_sign"):
            if screen_key:
                await pilot.press(screen_key)
                await settle(pilot)
            keys = list(app.screen.query(FooterKey))
            assert keys, f"no footer on {screen_key!r}"
            palette = [k for k in keys if "-command-palette" in k.classes]
            room = 80 - (palette[0].region.width if palette else 0)
            listed = [k for k in keys if k not in palette]
            hidden = [k.description for k in listed if k.region.right > room]
            assert not hidden, f"{type(app.screen).__name__}: {hidden} fall off the footer"
            assert not [k.key for k in listed if "," in k.key]  # one key per entry, as pressed
            assert len({k.action for k in listed}) == len(listed)  # no action listed twice
            shown = {k.description for k in listed}
            if not screen_key:
                assert {"Pause", "Save", "Guild", "Quests", "Vault", "Oracle", "Keys", "Quit"} <= shown
            else:
                own = [b for b in type(app.screen).BINDINGS if isinstance(b, Binding) and b.show]
                assert {b.description for b in own} <= shown
                await pilot.press("escape")
                await settle(pilot)


@pytest.mark.asyncio
async def test_time_to_the_next_goal_on_the_card_the_bar_and_the_guild() -> None:
    from tui.screens.guild import GuildScreen
    from tui.widgets.skill_panel import SkillPanel

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    paced = replace(STATS, step=1_400, seconds_trained=3_900.0, steps_per_minute=50.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(
            pilot, engine, snapshot(stats=paced, skills=(skill_info(evals=(0.5, 0.9)),), eval_every=100)
        )
        card = app.tavern.query_one(HeroCard)
        assert "L2 in 12m" in card.render().plain  # 600 steps at 50 a minute
        assert "trained 1h05m" in card.detail
        status_line = visible_lines(app.tavern.query_one(StatusBar))
        assert (
            len(status_line) == 1 and "50 steps/min" in status_line[0] and "learns from 20%" in status_line[0]
        )
        slow = replace(
            paced, step=12_345, level=12, steps_per_minute=3.0, grade="A 100", gold=12_345, atk=12.5
        )
        engine.send(p.StepCompleted(12_345, 1, 1.0, 1.0, 1e-3, 0.5, 100.0, slow))
        for _ in range(40):  # steps reach the screen at the next frame (FRAME_SECONDS)
            await settle(pilot, 1)
            if card.stats.step == 12_345:
                break
        await settle(pilot)
        lines = visible_lines(card)
        assert any("XP" in line and "L13 in 3h38m" in line for line in lines), lines  # one line at 80x24
        assert any("grade A 100" in line for line in lines), lines
        assert any("⚙" in line for line in lines), "\n".join(
            lines
        )  # the card's last line still shows: nothing wrapped
        await pilot.press("g")
        await settle(pilot)
        assert isinstance(app.screen, GuildScreen)
        gate = shown(app.screen.query_one(SkillPanel), "#gate")
        assert "next level: at least 2 more evals ≥ 80% (~200 steps, ~1h06m)" in gate  # at 3 steps/min


def test_a_champion_beats_every_earlier_loot() -> None:
    from tui.app import champion_of

    def loot(step: int, acc: float, level: int = 1, suite: float | None = None) -> p.LootInfo:
        metrics = (("capitals", suite),) if suite is not None else ()
        return p.LootInfo(step, f"step-{step:06d}", 0.0, "auto", 1.0, None, 1e-3, "",
                          skills=(p.SkillScore("bin", level, acc, 8),), metrics=metrics)  # fmt: skip

    assert champion_of(loot(10, 0.5), []) == ""  # the first loot crowns nothing
    assert champion_of(loot(20, 0.6, suite=0.4), [loot(10, 0.5, suite=0.5)]) == "bin"
    assert champion_of(loot(20, 0.1, level=2), [loot(10, 0.9)]) == "bin"  # a higher level wins
    assert champion_of(loot(20, 0.5, suite=0.9), [loot(10, 0.5, suite=0.5)]) == "capitals"  # a tie is no win


@pytest.mark.asyncio
async def test_new_champion_and_watchdog_moments_are_toasts() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    first = p.LootInfo(
        100, "step-000100", 0.0, "auto", 1.0, None, 1e-3, "", skills=(p.SkillScore("bin", 1, 0.5, 8),)
    )
    better = replace(first, step=200, name="step-000200", skills=(p.SkillScore("bin", 1, 0.75, 8),))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(loot=(first,)))
        engine.send(p.CheckpointSaved(better))
        engine.send(p.WatchdogIntervened(640, "pause", "3 rollbacks in 2,000 steps", 0.125))
        await settle(pilot)
        toasts = {n.title: n.message for n in app._notifications}
        assert toasts["New champion!"] == "step-000200 is the best loot yet by bin"
        assert toasts["Watchdog paused DIO"] == "3 rollbacks in 2,000 steps"


@pytest.mark.asyncio
async def test_achievements_screen_and_unlock_toast() -> None:
    from tui.screens.achievements import AchievementsScreen
    from tui.widgets.keyed_table import KeyedTable

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    book = (
        p.AchievementInfo("first-loot", "Treasure hunter", "Save a first loot", 200),
        p.AchievementInfo(
            "first-quest", "Questing", "Finish a first quest (your own training file, every epoch)"
        ),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(achievements=book))
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AchievementsScreen)
        assert "1 of 2 unlocked" in str(app.screen.query_one("#achievements-summary").render())
        table = app.screen.query_one(KeyedTable)
        assert [table.get_row_at(i)[0] for i in range(2)] == ["🏆", "🔒"]
        detail = app.screen.query_one("#achievements-detail")
        assert str(detail.render()) == "Treasure hunter: Save a first loot"
        await pilot.press("down")
        await settle(pilot)  # the whole "how", though 80 columns cut the table's column
        assert str(detail.render()) == "Questing: Finish a first quest (your own training file, every epoch)"
        engine.send(p.AchievementUnlocked(replace(book[1], step=900)))
        await settle(pilot)
        assert "2 of 2 unlocked" in str(app.screen.query_one("#achievements-summary").render())
        assert table.get_row_at(1)[2] == "900"
        await pilot.pause(ACHIEVEMENTS_GATHERED_S + 0.2)
        toasts = {n.title: n.message for n in app._notifications}
        assert toasts["🏆 Achievement unlocked"] == f"Questing: {book[1].how}"
        # Unlocked together (the first eval brings two): one toast, not a stack of them.
        engine.send(p.AchievementUnlocked(p.AchievementInfo("tested", "Tested", "Finish an eval", 950)))
        engine.send(p.AchievementUnlocked(p.AchievementInfo("promising", "Promising", "Score well", 950)))
        await settle(pilot)
        await pilot.pause(ACHIEVEMENTS_GATHERED_S + 0.2)
        toasts = {n.title: n.message for n in app._notifications}
        assert toasts["🏆 2 achievements unlocked"] == "Tested · Promising (a: how)"
        assert len(app._notifications) == 2, [n.title for n in app._notifications]
