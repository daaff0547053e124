"""The start screen: `realm play` with no --hero when several heroes exist. Pick one
(Enter) or create one (n: a name, a model folder or the hatchling, a mode), checked before
any engine starts. tui/start.py runs it as its own small app before the Tavern (the engine must be launched
before the Tavern's App.run())."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from engine.protocol.config import MODES
from engine.protocol.model_folder import model_problem, resolve_model
from engine.protocol.savedir import is_hero_name
from tui.cli.heroes import state_word
from tui.widgets.keyed_table import KeyedTable


@dataclass(frozen=True)
class Choice:
    """What the player chose: a hero, and for a new one its model and mode."""

    hero: str
    model: str | None = None
    mode: str | None = None


def new_hero_problem(name: str, model: str, mode: str, taken: set[str], gpu: bool) -> str | None:
    """Why a new hero cannot be made as typed; None when it can."""
    if not is_hero_name(name):
        return "a hero's name is a plain folder name, like 'sage'"
    if name in taken:
        return f"{name} exists: pick it from the list"
    if model:
        problem = model_problem(model)
        if problem is not None:
            return f"model folder: {problem}"
    if mode == "qlora" and not gpu:
        return "qlora needs a CUDA GPU (bitsandbytes 4-bit): this machine has none; use lora or full"
    return None


ESTIMATE_DELAY = 0.4  # seconds after the last key: one estimate per pause in typing


def new_hero_estimate(model: str, mode: str) -> str:
    """The memory a new hero would need, from the engine's own estimate
    (engine/model/estimate.py, in a subprocess: this side never loads torch)."""
    args = [sys.executable, "-m", "engine.model.estimate", "--mode", mode]
    if model:
        args += ["--model", str(resolve_model(model))]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return f"no memory estimate: {exc}"
    if not answer.get("ok"):
        return str(answer.get("message") or "no memory estimate")
    where = "this GPU" if answer.get("device") != "cpu" else "this machine's CPU"
    over = " — more than the GPU has: try lora or qlora" if answer.get("over") else ""
    return f"Memory on {where}, automatic batch: {answer['line']}{over}"


class StartScreen(Screen[Choice | None]):
    BINDINGS = [
        Binding("enter", "pick", "Play", tooltip="Play the highlighted hero"),
        Binding("n", "new", "New hero"),
        Binding("escape", "close_form", "Back", tooltip="Back to the list (no new hero is made)"),
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
                yield Static(id="new-estimate")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.add_columns("hero", "model", "mode", "step", "state")
        table.replace_rows(
            (h["name"], (h["name"], h["model"], h["mode"], f"{h['step']:,}", state_word(h)))
            for h in self.heroes
        )
        if self.heroes:  # a returning player most often wants the hero played last
            last = max(self.heroes, key=lambda h: float(h.get("played_at") or 0))
            table.move_cursor(row=table.get_row_index(last["name"]), animate=False)
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
        self.refresh_bindings()
        self._estimate_soon()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "new-model":
            self._estimate_soon()

    def on_select_changed(self, _event: Select.Changed) -> None:
        self._estimate_soon()

    def _estimate_soon(self) -> None:
        """The memory estimate for the model and mode as typed, once typing pauses."""
        timer = getattr(self, "_estimate_timer", None)
        if timer is not None:
            timer.stop()
        self._estimate_timer = self.set_timer(ESTIMATE_DELAY, self._estimate)

    def _estimate(self) -> None:
        model = self.query_one("#new-model", Input).value.strip()
        mode = str(self.query_one("#new-mode", Select).value)
        problem = model_problem(model) if model else None
        if problem is not None:
            self.query_one("#new-estimate", Static).update("")  # the check says what is wrong
            return
        self.query_one("#new-estimate", Static).update("Estimating the memory it needs…")

        def work() -> None:
            text = new_hero_estimate(model, mode)
            self.app.call_from_thread(self._estimated, model, mode, text)

        self.run_worker(work, thread=True, exclusive=True, group="estimate")

    def _estimated(self, model: str, mode: str, text: str) -> None:
        now = (
            self.query_one("#new-model", Input).value.strip(),
            str(self.query_one("#new-mode", Select).value),
        )
        if now == (model, mode):  # not for a folder or mode changed since
            self.query_one("#new-estimate", Static).update(Text(text))

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc says what it does: Back while the new-hero form is open, else Quit."""
        if action in ("close_form", "quit_start"):
            form = self.query("#start-new")  # asked before compose too: no form yet, closed
            form_open = bool(form) and bool(form.first().display)
            return form_open == (action == "close_form")
        return True

    def action_close_form(self) -> None:
        self.query_one("#start-new").display = False
        self.query_one(KeyedTable).focus()
        self.refresh_bindings()

    def action_quit_start(self) -> None:
        self.dismiss(None)
