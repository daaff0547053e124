"""The Armory: the hero's settings, changed from the game.

Every setting (engine/protocol/settings.py: the keys of `realm config`) with its value and
when a change applies: "now" (the engine's next step) or "restart" (saved; the next
start). Enter edits the highlighted one; while typing, each value is checked by the
engine (a dry run), which answers what is wrong with it or, for the batch shape, the
memory it would need; Enter again saves it. Nothing here validates on its own: the engine
and `realm config set` share one set of rules.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Input, Static

from engine.protocol import messages as p
from engine.protocol import settings
from engine.protocol.config import HeroConfig
from tui.messages import SendCommand
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable

CHECK_DELAY = 0.3  # seconds after the last key before a value is checked


def config_of(data: dict[str, Any]) -> HeroConfig | None:
    try:
        return HeroConfig.from_dict(data) if data else None
    except (ValueError, TypeError, KeyError):
        return None


class ArmoryScreen(SubScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back (while editing: cancel the edit)"),
        Binding("m", "app.pop_screen", "Back", show=False),
        Binding("enter", "edit", "Edit", tooltip="Change the highlighted setting", show=True),
    ]

    def __init__(self, config: dict[str, Any], memory_plan: str, connected: bool) -> None:
        super().__init__()
        self.config = config
        self.memory_plan = memory_plan
        self.connected = connected
        self.editing: str | None = None  # the key being edited
        self._pending = ""  # the value typed last: only it is checked

    def compose(self) -> ComposeResult:
        yield Header(icon="⚔")
        with Vertical(id="armory"):
            yield Static(id="armory-summary")
            yield KeyedTable(id="armory-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="armory-help")
            yield Input(id="armory-input", placeholder="new value; Enter saves, Esc cancels")
            yield Static(id="armory-check")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(KeyedTable).add_columns("setting", "value", "applies")
        self.query_one(Input).display = False
        self.show(self.config, self.memory_plan, self.connected)
        self.query_one(KeyedTable).focus()

    def show(self, config: dict[str, Any], memory_plan: str, connected: bool) -> None:
        self.config, self.memory_plan, self.connected = config, memory_plan, connected
        hero = config_of(config)
        summary = f"memory now: {memory_plan or '—'}\n"
        summary += "[dim]now = from the next step · restart = saved, applies when the hero next starts[/]"
        if not connected:
            summary += (
                "\n[b]The engine is down:[/] settings can be changed with `realm config set KEY VALUE`."
            )
        self.query_one("#armory-summary", Static).update(summary)
        if hero is None:
            self.query_one(KeyedTable).replace_rows([])
            return
        self.query_one(KeyedTable).replace_rows(
            (
                key,
                (
                    key,
                    settings.show(settings.get_value(hero, key)),
                    Text("now", style="green") if settings.applies(key) == "now" else Text("restart", "dim"),
                ),
            )
            for key in settings.all_keys(hero)
        )
        self._help()

    def _help(self) -> None:
        hero, key = config_of(self.config), self.query_one(KeyedTable).cursor_key()
        text = settings.describe(hero, key) if hero is not None and key is not None else ""
        self.query_one("#armory-help", Static).update(Text(f"{key}: {text}" if key else ""))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._help()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_edit()  # Enter on the table

    def action_edit(self) -> None:
        key = self.query_one(KeyedTable).cursor_key()
        hero = config_of(self.config)
        if key is None or hero is None or self.editing is not None:
            return
        if not self.connected:
            self.notify("The engine is down: use `realm config set KEY VALUE`.", severity="error")
            return
        self.editing = key
        box = self.query_one(Input)
        box.display = True
        box.value = self._pending = settings.show(settings.get_value(hero, key))
        box.border_title = f"{key} ({'now' if settings.applies(key) == 'now' else 'at the next start'})"
        box.focus()
        self.query_one("#armory-check", Static).update("")

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.editing is None or event.value == self._pending:
            return  # the value as it was filled in: nothing to check
        self.query_one("#armory-check", Static).update("[dim]checking…[/]")
        self._pending = event.value
        self.set_timer(CHECK_DELAY, lambda value=event.value: self._check(value))

    def _check(self, value: str) -> None:
        if self.editing is None or value != self._pending:
            return  # a newer key press will be checked instead
        self.post_message(SendCommand(p.SetConfig(self.editing, value, dry_run=True), "The engine is down."))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.editing is None:
            return
        # The box stays open until the engine says: a refused value is still there to fix.
        self.post_message(SendCommand(p.SetConfig(self.editing, event.value.strip()), "The engine is down."))
        self.query_one("#armory-check", Static).update("[dim]saving…[/]")

    def replied(self, reply: p.ConfigReply) -> None:
        """The engine's answer: a check's verdict under the box, or a change saved."""
        if reply.dry_run:
            if self.editing is not None:
                style = "green" if reply.ok else "bold red"
                self.query_one("#armory-check", Static).update(Text(reply.message, style=style))
            return
        if reply.ok and self.editing is not None:
            self._stop_editing()
        self.query_one("#armory-check", Static).update(
            Text(reply.message, style="green" if reply.ok else "bold red")
        )

    def _stop_editing(self) -> None:
        self.editing = None
        self.query_one(Input).display = False
        self.query_one(KeyedTable).focus()

    def action_back(self) -> None:
        if self.editing is not None:
            self._stop_editing()
            self.query_one("#armory-check", Static).update("")
        else:
            self.app.pop_screen()
