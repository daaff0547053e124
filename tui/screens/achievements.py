"""Achievements: every one, unlocked (with the step) or locked (with how to earn it).
They are earned by the engine from what happens in training and never change it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from engine.protocol import messages as p
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable


class AchievementsScreen(SubScreen):
    BINDINGS = [Binding("escape,a", "app.pop_screen", "Back")]

    def __init__(self, achievements: tuple[p.AchievementInfo, ...]) -> None:
        super().__init__()
        self.achievements = achievements

    def compose(self) -> ComposeResult:
        yield Header(icon="🏆")
        with Vertical(id="achievements"):
            yield Static(id="achievements-summary")
            # The highlighted achievement's whole "how" (at 80 columns the table cuts it).
            yield Static(id="achievements-detail")
            yield KeyedTable(id="achievements-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(KeyedTable).add_columns(
            "", "achievement", "at step", "how"
        )  # "how" last: it is the long one
        self.show(self.achievements)
        self.query_one(KeyedTable).focus()

    def show(self, achievements: tuple[p.AchievementInfo, ...]) -> None:
        self.achievements = achievements
        won = sum(a.unlocked for a in achievements)
        summary = f"{won} of {len(achievements)} unlocked" if achievements else "The engine has not said yet."
        self.query_one("#achievements-summary", Static).update(summary)
        self.query_one(KeyedTable).replace_rows(
            (
                a.id,
                ("🏆" if a.unlocked else "🔒", a.title, f"{a.step:,}" if a.step is not None else "—", a.how),
            )
            for a in achievements
        )
        self._show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        key = self.query_one(KeyedTable).cursor_key()
        chosen = next((a for a in self.achievements if a.id == key), None)
        text = f"{chosen.title}: {chosen.how}" if chosen is not None else ""
        self.query_one("#achievements-detail", Static).update(Text(text))
