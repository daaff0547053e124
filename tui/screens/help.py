"""Every key, read from the live bindings so the list can never drift from the code."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("Keys of the Realm  (esc closes)", id="help-title")
            table: DataTable[str] = DataTable(show_cursor=False)
            table.add_columns("key", "action")
            for key, description in self.keys:
                table.add_row(key, description)
            yield table
            yield Label("Every action is also in the command palette (ctrl+p).")
