"""The start screen of `realm play` with several heroes: pick one, or make one (checked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import settle
from tui.screens.start import Choice
from tui.start import StartApp

HEROES = [
    {"name": "dio", "model": "hatchling", "mode": "full", "step": 1500, "state": "resting"},
    {"name": "sage", "model": "/models/qwen", "mode": "lora", "step": 20, "state": "training"},
]


@pytest.mark.asyncio
async def test_enter_plays_the_highlighted_hero() -> None:
    app = StartApp(HEROES, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
    assert app.return_value == Choice("sage")


@pytest.mark.asyncio
async def test_a_new_hero_is_checked_before_any_engine_starts(tmp_path: Path) -> None:
    from textual.widgets import Input

    app = StartApp(HEROES, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)

        def said() -> str:
            return str(app.screen.query_one("#new-check").render())

        app.screen.query_one("#new-name", Input).value = "sage"
        await pilot.press("enter")
        await settle(pilot)
        assert "sage exists" in said()
        app.screen.query_one("#new-name", Input).value = "bard"
        app.screen.query_one("#new-model", Input).value = str(tmp_path / "nowhere")
        await pilot.press("enter")
        await settle(pilot)
        assert "model folder" in said() and app.return_value is None
        app.screen.query_one("#new-model", Input).value = ""
        await pilot.press("enter")
        await settle(pilot)
    assert app.return_value == Choice("bard", None, "full")


@pytest.mark.asyncio
async def test_escape_quits_without_choosing() -> None:
    app = StartApp(HEROES, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
    assert app.return_value is None
