"""The task board: what the engine does besides training (evals, loot evals, compares,
Oracle answers), queued, running and finished, with results."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from engine.protocol import messages as p
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable

MARK = {"queued": "⏳ queued", "running": "⚙ running", "done": "✔ done", "failed": "✖ failed"}


class TasksScreen(SubScreen):
    BINDINGS = [Binding("escape,t", "app.pop_screen", "Back")]

    def __init__(self, tasks: dict[int, p.TaskInfo]) -> None:
        super().__init__()
        self.tasks = tasks

    def compose(self) -> ComposeResult:
        yield Header(icon="📋")
        with Vertical(id="tasks"):
            yield Static(
                "Training waits while a task runs; a pause lands between two slices (one eval batch).",
                id="tasks-help",
            )
            # The highlighted task's whole result (at 80 columns the table cuts it).
            yield Static(id="tasks-detail")
            yield KeyedTable(id="tasks-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(KeyedTable).add_columns("state", "task", "progress", "when", "result")
        self.show(self.tasks)
        self.query_one(KeyedTable).focus()

    def show(self, tasks: dict[int, p.TaskInfo]) -> None:
        self.tasks = tasks
        rows = []
        for task in sorted(tasks.values(), key=lambda t: -t.id):
            progress = f"{task.done}/{task.total}" if task.total else "-"
            when = time.strftime(
                "%H:%M:%S", time.localtime(task.finished_at or task.started_at or task.added_at)
            )
            rows.append(
                (str(task.id), (MARK.get(task.state, task.state), task.label, progress, when, task.result))
            )
        self.query_one(KeyedTable).replace_rows(rows)
        self._show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        key = self.query_one(KeyedTable).cursor_key()
        task = self.tasks.get(int(key)) if key is not None else None
        detail = self.query_one("#tasks-detail", Static)
        detail.update(Text(f"{task.label}: {task.result}") if task is not None and task.result else "")
        detail.display = task is not None and bool(task.result)
