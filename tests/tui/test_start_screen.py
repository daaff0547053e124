"""The start screen of `realm play` with several heroes: pick one, or make one (checked)."""

from __future__ import annotations

import re
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
async def test_the_cursor_starts_on_the_hero_played_last() -> None:
    heroes = [
        {**HEROES[0], "played_at": 100.0},
        {**HEROES[1], "played_at": 300.0},
        {
            "name": "zed",
            "model": "hatchling",
            "mode": "full",
            "step": 5,
            "state": "stopped",
            "played_at": 200.0,
        },
    ]
    app = StartApp(heroes, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
    assert app.return_value == Choice("sage")


def test_a_hero_row_says_when_it_was_last_played(tmp_path: Path) -> None:
    import json

    from engine.protocol.savedir import SaveDir
    from tui.cli.heroes import hero_row

    save = SaveDir(tmp_path / "dio")
    save.create()
    save.status.write_text(json.dumps({"step": 3, "updated_at": 50.0, "last_watched": 70.0}))
    assert hero_row(save)["played_at"] == 70.0


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


def footer_says(app: StartApp, key: str) -> str | None:
    """What the footer offers for ``key`` on the start screen now (None: not offered)."""
    active = app.screen.active_bindings.get(key)
    return active.binding.description if active is not None and active.enabled else None


@pytest.mark.asyncio
async def test_escape_in_the_new_hero_form_goes_back_and_says_so() -> None:
    app = StartApp(HEROES, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert footer_says(app, "escape") == "Quit"
        await pilot.press("n")
        await settle(pilot)
        assert footer_says(app, "escape") == "Back"  # the form is open: Esc closes it
        await pilot.press("escape")
        await settle(pilot)
        assert not app.screen.query_one("#start-new").display and app.return_value is None
        assert footer_says(app, "escape") == "Quit"
        await pilot.press("escape")
        await settle(pilot)
    assert app.return_value is None and not app.is_running


QWEN3_06B = {  # Qwen3-0.6B's published shape (no weights needed for the estimate)
    "model_type": "qwen3",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}


@pytest.mark.asyncio
async def test_a_new_hero_shows_the_memory_it_would_need(tmp_path: Path) -> None:
    import json

    from textual.widgets import Input, Select

    folder = tmp_path / "qwen"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN3_06B))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    app = StartApp(HEROES, gpu=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")

        async def estimate_says() -> str:
            for _ in range(100):  # the estimate runs in a subprocess: up to ~10 s
                await settle(pilot, 2)
                text = str(app.screen.query_one("#new-estimate").render())
                if "est." in text or "no memory" in text:
                    return text
            raise AssertionError("no estimate shown")

        hatchling = await estimate_says()
        # 0.1 GiB where the CPU has bf16 units (16-bit activations), 0.2 without
        assert re.search(r"est\. 0\.[12] GiB RAM", hatchling) and "automatic batch" in hatchling
        app.screen.query_one("#new-model", Input).value = str(folder)
        full = await estimate_says()
        while full == hatchling:
            full = await estimate_says()
        assert "weights 2.2, optimizer 6.7" in full, full  # 0.6B params × 4 B; AdamW + grads 12 B
        app.screen.query_one("#new-mode", Select).value = "lora"
        await settle(pilot)
        lora = await estimate_says()
        while lora == full:
            lora = await estimate_says()
        assert "optimizer 0.1" in lora, lora  # only the adapters train
