"""The log book: every event of the run (events.jsonl, read by the engine), newest at the
bottom, filtered by kind (levels, loot, quests, evals, campaign, achievements, watchdog,
crashes, the engine's life) or to warnings only. The highlighted row is shown whole below
the table, since a long line is cut in its cell."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static

from engine.protocol import messages as p
from tui.messages import SendCommand
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable

ICONS = {
    "level": "✨",
    "loot": "💎",
    "quest": "📜",
    "eval": "🎯",
    "campaign": "🗺",
    "achievement": "🏆",
    "watchdog": "🛡",
    "crash": "💥",
    "run": "⚙",
    "other": "·",
}
FILTERS: tuple[str, ...] = ("all", *p.LOG_KINDS)
SHOWN = 1000  # rows in the table at once: the newest that pass the filter


def when(stamp: float) -> str:
    """HH:MM today, else the date: the log book spans days of idle training."""
    if not stamp:
        return ""
    local = time.localtime(stamp)
    today = time.localtime()
    return time.strftime("%H:%M" if local[:3] == today[:3] else "%m-%d", local)


def passes(row: p.LogLine, kind: str, warnings_only: bool) -> bool:
    if warnings_only and row.level not in ("warning", "error"):
        return False
    return kind == "all" or row.kind == kind


class LogBookScreen(SubScreen):
    BINDINGS = [
        Binding("escape,l", "app.pop_screen", "Back"),
        Binding("f", "next_filter", "Filter", tooltip="Show one kind of event: levels, loot, quests, evals…"),
        Binding("shift+f", "previous_filter", "Filter back", show=False),
        Binding("w", "warnings", "Warnings", tooltip="Only warnings and errors (on/off)"),
        Binding("end", "newest", "Newest", show=False),
    ]

    def __init__(self, rows: Iterable[p.LogLine]) -> None:
        super().__init__()
        self.rows = list(rows)
        self.kind = "all"
        self.warnings_only = False
        self.loaded = False  # the engine's full read has arrived

    def compose(self) -> ComposeResult:
        yield Header(icon="📖")
        with Vertical(id="log-book"):
            yield Static(id="log-summary")
            yield KeyedTable(id="log-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="log-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.add_columns("step", "time", "", "event")
        self._draw(follow=True)
        table.focus()
        # Asked once mounted, so the answer always finds a table to fill.
        self.post_message(
            SendCommand(p.ReadLog(), "The engine is down: the log book shows this session's events only.")
        )

    def show(self, rows: Iterable[p.LogLine], loaded: bool = True) -> None:
        """New rows from the engine (the whole read, or one more line): stay at the bottom
        when the cursor was there, else keep it on its row."""
        table = self.query_one(KeyedTable)
        at_end = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        self.rows = list(rows)
        self.loaded = self.loaded or loaded
        self._draw(follow=at_end)

    def _visible(self) -> list[tuple[int, p.LogLine]]:
        picked = [(i, r) for i, r in enumerate(self.rows) if passes(r, self.kind, self.warnings_only)]
        return picked[-SHOWN:]

    def _draw(self, follow: bool) -> None:
        visible = self._visible()
        table = self.query_one(KeyedTable)
        table.replace_rows(
            (
                str(i),
                (
                    f"{row.step:,}" if row.step else "",
                    when(row.time),
                    ICONS.get(row.kind, "·"),
                    Text(row.text, style="bold yellow" if row.level != "info" else ""),
                ),
            )
            for i, row in visible
        )
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
        which = "every kind" if self.kind == "all" else f"{ICONS[self.kind]} {self.kind}"
        which += ", warnings only" if self.warnings_only else ""
        state = "" if self.loaded else " · reading the log book…"
        self.query_one("#log-summary", Static).update(
            f"{len(visible):,} of {len(self.rows):,} events · showing {which}{state}\n"
            "[dim]f: next kind · w: warnings only · the highlighted event in full below[/]"
        )
        self._detail()

    def _detail(self) -> None:
        key = self.query_one(KeyedTable).cursor_key()
        text = ""
        if key is not None and int(key) < len(self.rows):
            row = self.rows[int(key)]
            at = f"step {row.step:,} · " if row.step else ""
            text = f"{at}{row.kind} · {row.text}"
        self.query_one("#log-detail", Static).update(Text(text))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _set_filter(self, offset: int) -> None:
        self.kind = FILTERS[(FILTERS.index(self.kind) + offset) % len(FILTERS)]
        self._draw(follow=True)

    def action_next_filter(self) -> None:
        self._set_filter(1)

    def action_previous_filter(self) -> None:
        self._set_filter(-1)

    def action_warnings(self) -> None:
        self.warnings_only = not self.warnings_only
        self._draw(follow=True)

    def action_newest(self) -> None:
        table = self.query_one(KeyedTable)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
