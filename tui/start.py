"""The start screen as its own app: run by `realm play` before the engine starts, when no
--hero was given and several heroes exist."""

from __future__ import annotations

from typing import Any

from textual.app import App

from tui.screens.start import Choice, StartScreen


class StartApp(App[Choice | None]):
    """The start screen alone: its result is the player's choice (None: quit)."""

    TITLE = "Realm of Training"
    CSS_PATH = "realm.tcss"

    def __init__(self, heroes: list[dict[str, Any]], gpu: bool) -> None:
        super().__init__()
        self.heroes = heroes
        self.gpu = gpu

    def on_mount(self) -> None:
        self.push_screen(StartScreen(self.heroes, self.gpu), self.exit)
