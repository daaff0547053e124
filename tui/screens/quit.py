"""Leaving the game: keep DIO training in the background, or save and stop."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[str]):
    """Dismisses with "background", "stop" or "cancel"."""

    BINDINGS = [
        Binding("b", "choose('background')", "Leave training in background"),
        Binding("s", "choose('stop')", "Save and stop"),
        Binding("escape,c", "choose('cancel')", "Cancel"),
        # ctrl+c opened this dialog (the reflex); pressed again it means "just go"
        Binding("ctrl+c", "choose('background')", "Leave at once (DIO keeps training)", show=False),
    ]

    def __init__(self, hero: str = "DIO") -> None:
        super().__init__()
        self.hero = hero

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog"):
            yield Label("Leave the Realm?", id="quit-title")
            yield Label(
                f"{self.hero} can keep training while you are away (even if this terminal closes).",
                id="quit-body",
            )
            yield Button(
                f"(b) Leave {self.hero} training in the background", id="background", variant="primary"
            )
            yield Button("(s) Save loot and stop training", id="stop", variant="warning")
            yield Button("(esc) Stay", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
