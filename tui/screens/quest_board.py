"""The Quest board: every quest by state, with keys to re-prioritise, cancel, retry, add.

The board only sends commands; the engine answers with a new QuestBoard (and a
QuestReply the app shows as a notification), which the app hands back via ``show``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, ProgressBar, Static

from engine.protocol import messages as p
from engine.protocol.config import QUEST_PRIORITIES
from engine.protocol.names import counted
from tui.messages import SendCommand
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable

STATE_MARK = {"active": "⚔ active", "queued": "⏳ queued", "done": "✔ done", "failed": "✖ failed"}


def detail(quest: p.QuestInfo) -> str:
    if quest.state == "failed":
        return quest.reason
    if quest.state == "done":
        before = f"{quest.loss_before:.3f}" if quest.loss_before is not None else "?"
        after = f"{quest.loss_after:.3f}" if quest.loss_after is not None else "?"
        outcome = f" · {quest.outcome}" if quest.outcome else ""
        return f"loss {before} → {after} · {quest.tokens:,} tokens · +100 gold{outcome}"
    if quest.state == "active":
        return f"{quest.seen:,}/{quest.total:,} rows · epoch {quest.epoch}/{quest.epochs}"
    notices = f" · {'; '.join(quest.notices)}" if quest.notices else ""
    return f"{counted(quest.epochs, 'epoch')} · checks {quest.checks}{notices}"


class QuestBoardScreen(SubScreen):
    BINDINGS = [
        Binding("escape,b", "app.pop_screen", "Back"),
        Binding("plus,equals_sign", "raise_priority", "Raise", key_display="+"),
        Binding("minus", "lower_priority", "Lower", key_display="-"),
        Binding("c", "cancel", "Cancel", tooltip="Cancel the selected quest"),
        Binding("t", "retry", "Retry", tooltip="Retry the selected failed quest"),
        Binding("a", "app.add_quest", "Add", tooltip="Add a quest file"),
    ]

    def __init__(self, quests: tuple[p.QuestInfo, ...], hero: str = "DIO") -> None:
        super().__init__()
        self.quests = quests
        self.hero = hero

    def compose(self) -> ComposeResult:
        yield Header(icon="📜")
        with Vertical(id="board"):
            yield Static(id="board-active")
            yield ProgressBar(id="board-progress", total=1, show_eta=False)
            # The selected quest's full reason sits above the table: toasts appear at the
            # bottom right and would cover it there (at 80x24 the detail column is cut).
            yield Static(id="board-reason")
            yield KeyedTable(id="board-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.add_columns("state", "priority", "quest", "rows", "detail")
        self.show(self.quests)
        table.focus()

    def show(self, quests: tuple[p.QuestInfo, ...]) -> None:
        self.quests = quests
        # The cursor stays on its quest when rows re-sort (a priority change moves it).
        self.query_one(KeyedTable).replace_rows(
            (
                quest.name,
                (
                    STATE_MARK.get(quest.state, quest.state),
                    quest.priority,
                    quest.name,
                    f"{quest.rows:,}×{quest.epochs}",
                    detail(quest),
                ),
            )
            for quest in quests
        )
        active = next((q for q in quests if q.state == "active"), None)
        bar = self.query_one(ProgressBar)
        title = self.query_one("#board-active", Static)
        if active is None:
            counts = {s: sum(q.state == s for q in quests) for s in ("queued", "done", "failed")}
            title.update(
                "No quest under way. "
                + " · ".join(f"{n} {s}" for s, n in counts.items())
                + "\nDrop a .jsonl file into the hero's inbox/, or press a to add one."
            )
            bar.display = False
        else:
            title.update(f"⚔ {self.hero} is on [b]{active.name}[/b]: epoch {active.epoch}/{active.epochs}")
            bar.display = True
            bar.update(total=max(1, active.total), progress=active.seen)
        self._show_reason()

    def selected(self) -> p.QuestInfo | None:
        """The quest under the cursor, by its key (never by row number)."""
        name = self.query_one(KeyedTable).cursor_key()
        return next((q for q in self.quests if q.name == name), None)

    def on_data_table_row_highlighted(self) -> None:
        self._show_reason()

    def _show_reason(self) -> None:
        quest = self.selected()
        text = ""
        if quest is not None and quest.state == "failed":
            text = (
                f"[b]{quest.name}[/b] failed: {quest.reason}\nFix the file in failed/ and press t to retry."
            )
        elif quest is not None and quest.outcome:  # a sparring quest's re-test
            text = f"[b]{quest.name}[/b]: {quest.outcome} of the problems {self.hero} had missed"
        elif quest is not None and quest.notices:
            text = f"[b]{quest.name}[/b]: " + "; ".join(quest.notices)
        reason = self.query_one("#board-reason", Static)
        reason.update(text)
        reason.display = bool(text)

    # ------------------------------------------------------------------ actions

    def _send(self, command: p.QuestCommand) -> None:
        self.post_message(SendCommand(command, "The engine is down: the board cannot change now."))

    def _shift(self, step: int) -> None:
        quest = self.selected()
        if quest is None or quest.state in ("done",):
            self.app.bell()
            return
        index = QUEST_PRIORITIES.index(quest.priority) + step
        if not 0 <= index < len(QUEST_PRIORITIES):
            self.app.bell()
            return
        self._send(p.SetQuestPriority(quest.name, QUEST_PRIORITIES[index]))

    def action_raise_priority(self) -> None:
        self._shift(-1)

    def action_lower_priority(self) -> None:
        self._shift(+1)

    def action_cancel(self) -> None:
        quest = self.selected()
        if quest is None or quest.state not in ("queued", "active"):
            self.notify("Only queued or active quests can be cancelled.", severity="warning")
            return
        self._send(p.CancelQuest(quest.name))

    def action_retry(self) -> None:
        quest = self.selected()
        if quest is None or quest.state != "failed":
            self.notify("Only failed quests can be retried.", severity="warning")
            return
        self._send(p.RetryQuest(quest.name))
