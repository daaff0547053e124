"""The start screen: `realm play` with no --hero when several heroes exist. Pick one
(Enter) or create one (n: a name, a model folder or the hatchling, a mode), checked before
any engine starts. tui/start.py runs it as its own small app before the Tavern (the engine must be launched
before the Tavern's App.run())."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from engine.protocol.config import MODES
from engine.protocol.model_folder import model_folder_problem
from tui.widgets.keyed_table import KeyedTable


@dataclass(frozen=True)
class Choice:
    """What the player chose: a hero, and for a new one its model and mode."""

    hero: str
    model: str | None = None
    mode: str | None = None


def new_hero_problem(name: str, model: str, mode: str, taken: set[str], gpu: bool) -> str | None:
    """Why a new hero cannot be made as typed; None when it can."""
    if not name or "/" in name or name.startswith(".") or name != name.strip():
        return "a hero's name is a plain folder name, like 'sage'"
    if name in taken:
        return f"{name} exists: pick it from the list"
    if model:
        problem = model_folder_problem(Path(model).expanduser().resolve())
        if problem is not None:
            return f"model folder: {problem}"
    if mode == "qlora" and not gpu:
        return "qlora needs a CUDA GPU (bitsandbytes 4-bit): this machine has none; use lora or full"
    return None


class StartScreen(Screen[Choice | None]):
    BINDINGS = [
        Binding("enter", "pick", "Play", tooltip="Play the highlighted hero"),
        Binding("n", "new", "New hero"),
        Binding("escape,q", "quit_start", "Quit"),
    ]

    def __init__(self, heroes: list[dict[str, Any]], gpu: bool) -> None:
        super().__init__()
        self.heroes = heroes
        self.gpu = gpu

    def compose(self) -> ComposeResult:
        yield Header(icon="⚔")
        with Vertical(id="start"):
            yield Static("Which hero plays? Enter picks one, n makes a new one.", id="start-summary")
            yield KeyedTable(id="start-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="start-new"):
                yield Input(placeholder="name (a folder name: sage)", id="new-name")
                yield Input(
                    placeholder="model folder (empty: the hatchling, trains anywhere)", id="new-model"
                )
                yield Select([(mode, mode) for mode in MODES], value="full", allow_blank=False, id="new-mode")
                yield Static(id="new-check")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.add_columns("hero", "model", "mode", "step", "state")
        table.replace_rows(
            (h["name"], (h["name"], h["model"], h["mode"], f"{h['step']:,}", h["state"])) for h in self.heroes
        )
        self.query_one("#start-new").display = False
        table.focus()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_pick()

    def action_pick(self) -> None:
        if self.query_one("#start-new").display:
            self._create()
            return
        key = self.query_one(KeyedTable).cursor_key()
        if key is not None:
            self.dismiss(Choice(key))

    def action_new(self) -> None:
        self.query_one("#start-new").display = True
        self.query_one("#new-check", Static).update("Enter makes the hero; Esc goes back to the list.")
        self.query_one("#new-name", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._create()

    def _create(self) -> None:
        name = self.query_one("#new-name", Input).value
        model = self.query_one("#new-model", Input).value.strip()
        mode = str(self.query_one("#new-mode", Select).value)
        problem = new_hero_problem(name, model, mode, {h["name"] for h in self.heroes}, self.gpu)
        if problem is not None:
            self.query_one("#new-check", Static).update(f"[b red]{problem}[/]")
            return
        self.dismiss(Choice(name, model or None, mode))

    def action_quit_start(self) -> None:
        if self.query_one("#start-new").display:
            self.query_one("#start-new").display = False
            self.query_one(KeyedTable).focus()
        else:
            self.dismiss(None)
