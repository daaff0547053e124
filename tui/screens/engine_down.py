"""The engine died: say so, show why, offer to restart from the last loot. An engine that
refused to start (a setting, a model folder: something to change) says that instead."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class EngineDownScreen(ModalScreen[str]):
    """Dismisses with "restart", "quit" or "dismiss"."""

    BINDINGS = [
        Binding("r", "choose('restart')", "Restart from last loot"),
        Binding("q", "choose('quit')", "Quit"),
        Binding("escape", "choose('dismiss')", "Look around"),
    ]

    def __init__(self, error: str, detail: str, last_loot: int | None, refused: bool = False) -> None:
        super().__init__()
        self.error = error
        self.detail = detail
        self.last_loot = last_loot
        self.refused = refused

    def compose(self) -> ComposeResult:
        loot = f"step {self.last_loot:,}" if self.last_loot is not None else "the beginning"
        with Vertical(id="down-dialog"):
            if self.refused:
                yield Label("☠ The engine would not start", id="down-title")
                yield Label(f"{self.error}. Change that, then start it again.", id="down-error")
            else:
                yield Label("☠ The engine is down", id="down-title")
                yield Label(self.error, id="down-error")
            yield Static(self.detail, id="down-detail")
            again = "(r) Start it again" if self.refused else f"(r) Restart from the last loot ({loot})"
            yield Button(again, id="restart", variant="primary")
            yield Button("(q) Quit", id="quit")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "dismiss")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
