"""A small dialog: the path of a quest file to add (the engine validates and copies it)."""

from __future__ import annotations

import shlex
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static

from engine.protocol.messages import AddQuest


class AddQuestScreen(ModalScreen[AddQuest | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="add-dialog"):
            yield Static("Add a quest", id="add-title")
            yield Static(
                "Path of a .jsonl or .json file, or one compressed with gzip/bzip2/xz (it is copied; yours stays where it is):"
            )
            yield Input(placeholder="~/data/greetings.jsonl", id="add-path")
            yield Select(
                [("normal priority", "normal"), ("high priority", "high"), ("low priority", "low")],
                value="normal",
                allow_blank=False,
                id="add-priority",
            )
            yield Static("Enter adds · Esc cancels", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.notify("Type the path of a file.", severity="warning")
            return
        path = typed_path(text)
        if not path.exists():
            self.notify(f"No such file: {path}", severity="error")
            return
        if path.is_dir():  # the dialog stays open with what was typed: one file is one quest
            self.notify(f"{path} is a folder: type the path of one file in it", severity="error")
            return
        priority = str(self.query_one(Select).value)
        self.dismiss(AddQuest(path=str(path), priority=priority))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def typed_path(text: str) -> Path:
    """The path as typed, or as a terminal pastes a dropped file: quoted ('my file.jsonl')
    or with escaped spaces (my\\ file.jsonl)."""
    path = Path(text).expanduser().absolute()
    if path.exists():
        return path
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote: not shell words
        return path
    return Path(words[0]).expanduser().absolute() if len(words) == 1 else path
