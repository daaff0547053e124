"""The campaign map: every phase in order (done, current, next), what each trains, how
long, and for the current one where its gate stands; the highlighted phase's details
below. `n` starts a campaign (a file, or the shipped `specialist`), `x` leaves it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static

from engine.protocol import messages as p
from engine.protocol.names import counted
from tui.messages import SendCommand
from tui.screens.confirm import ConfirmScreen
from tui.screens.prompt import PromptScreen
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable

MARKS = {"done": "✓", "current": "▶", "next": "·"}
NONE_YET = (
    "{hero} follows no campaign: it trains its own skills, forever. A campaign trains in phases "
    "(a general one, then a specialist one that rehearses the first). Press n to start one: "
    "the shipped 'specialist', or a YAML file (realm campaign --help shows the format)."
)
DOWN = "The engine is down: start it first (r)."


def where(phase: p.PhaseInfo) -> str:
    """The map's last column, short enough for 80 columns (the detail below has the rest)."""
    if phase.state == "done":
        return f"done at step {phase.end_step:,}"
    if phase.state == "current":
        done = f"{phase.progress:.0%} · " if phase.progress is not None else ""
        return f"{done}{phase.gate}"
    return ""


def details(phase: p.PhaseInfo) -> str:
    lines = [f"[b]{phase.name}[/b] ({phase.state}): {phase.skills}, {phase.length}"]
    extras = [phase.schedule]
    if phase.rehearsal:
        extras.append(f"{phase.rehearsal:.0%} of examples rehearse earlier phases")
    if phase.quests:
        extras.append(f"{counted(phase.quests, 'quest file')}")
    lines.append(" · ".join(extras))
    if phase.state == "done":
        lines.append(f"Steps {phase.start_step:,}–{phase.end_step:,}, loot {phase.loot}: {phase.result}")
    elif phase.state == "current" and phase.start_step is not None:
        lines.append(f"Since step {phase.start_step:,}: {phase.gate}")
    return "\n".join(lines)


class CampaignScreen(SubScreen):
    BINDINGS = [
        Binding("escape,c", "app.pop_screen", "Back"),
        Binding("n", "start", "New campaign", tooltip="Start a campaign: a YAML file or 'specialist'"),
        Binding("x", "leave", "Leave", tooltip="Leave the campaign: back to the hero's own skills"),
    ]

    def __init__(self, campaign: p.CampaignInfo | None, hero: str = "DIO") -> None:
        super().__init__()
        self.campaign = campaign
        self.hero = hero

    def compose(self) -> ComposeResult:
        yield Header(icon="🗺")
        with Vertical(id="campaign"):
            yield Static(id="campaign-summary")
            yield KeyedTable(id="campaign-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="campaign-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(KeyedTable).add_columns("", "phase", "trains", "how long", "where")
        self.show(self.campaign)
        table = self.query_one(KeyedTable)
        table.focus()
        if self.campaign is not None:  # opens on the phase being trained
            table.move_cursor(row=self.campaign.current, animate=False)

    def show(self, campaign: p.CampaignInfo | None) -> None:
        self.campaign = campaign
        summary = self.query_one("#campaign-summary", Static)
        table = self.query_one(KeyedTable)
        if campaign is None:
            summary.update(NONE_YET.format(hero=self.hero))
            table.replace_rows([])
            self.query_one("#campaign-detail", Static).update("")
            return
        state = "complete" if campaign.finished else f"phase {campaign.current + 1} of {len(campaign.phases)}"
        about = f": {campaign.description}" if campaign.description else ""
        summary.update(f"[b]{campaign.name}[/b] ({state}){about}")
        table.replace_rows(
            (
                str(i),
                (
                    MARKS.get(ph.state, " "),
                    f"{i + 1}. {ph.name}",
                    ph.skills,
                    ph.length.split(" (")[0],
                    where(ph),
                ),
            )
            for i, ph in enumerate(campaign.phases)
        )
        self._detail(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, row: int) -> None:
        if self.campaign is None or not 0 <= row < len(self.campaign.phases):
            return
        self.query_one("#campaign-detail", Static).update(details(self.campaign.phases[row]))

    def action_start(self) -> None:
        if self.campaign is not None and not self.campaign.finished:
            self.notify("Leave this campaign first (x).", severity="warning")
            return
        question = "A campaign file (YAML), or the name of a shipped one:"
        self.app.push_screen(PromptScreen("New campaign", question, "specialist"), self._start)

    def _start(self, file: str | None) -> None:
        if file:
            self.post_message(SendCommand(p.StartCampaign(file), DOWN))

    def action_leave(self) -> None:
        if self.campaign is None:
            self.notify(f"{self.hero} follows no campaign.", severity="warning")
            return
        question = f"Leave campaign {self.campaign.name}?"
        detail = f"{self.hero} goes back to its own skills and schedule (loot is saved first)."
        self.app.push_screen(ConfirmScreen(question, detail), self._leave)

    def _leave(self, yes: bool | None) -> None:
        if yes:
            self.post_message(SendCommand(p.EndCampaign(), DOWN))
