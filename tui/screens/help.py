"""Every key, read from the live bindings so the list can never drift from the code."""

from __future__ import annotations

from itertools import groupby

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KEY_WIDTH = 12  # "esc a" or "^t": the action column gets the rest and wraps, at 80 columns too


def key_table(keys: list[tuple[str, str, str]]) -> RenderableType:
    """(screen, keys, action) rows as one short heading per screen, then its keys."""
    parts: list[RenderableType] = []
    for screen, rows in groupby(keys, key=lambda row: row[0]):
        if parts:
            parts.append(Text(""))
        parts.append(Text(screen, style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(width=KEY_WIDTH, no_wrap=True, style="bold")
        grid.add_column(ratio=1)
        for _, key, action in rows:
            grid.add_row(key, action)
        parts.append(grid)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Label("Keys of the Realm  (esc closes, ↑ ↓ scroll)", id="help-title")
            with VerticalScroll(id="help-keys"):
                yield Static(key_table(self.keys))
            yield Label("Every action is also in the command palette (ctrl+p).")

    def on_mount(self) -> None:
        self.query_one("#help-keys").focus()  # the arrows and page keys scroll at once
