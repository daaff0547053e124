"""The practitioner's view: learning rate (and the schedule that sets it), gradient norm,
tokens seen and per second, where each data source stands (skills are generated afresh,
quests have epochs), and a chart with axes of each skill's eval accuracy over the run,
or of the learning rate and gradient norm (`g` switches)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from engine.protocol import messages as p
from tui.screens.sub_screen import SubScreen
from tui.state import GameState
from tui.widgets.history_chart import HistoryChart
from tui.widgets.loot_feed import REASON_ICON, REASON_WORD

CHARTS = ("skills", "lr", "grad")


def near(history: Iterable[tuple[int, float]], step: int) -> float | None:
    """The value logged at ``step`` or the last one before it (None: not in the history)."""
    before = [value for at, value in history if at <= step]
    return before[-1] if before else None


def loot_line(state: GameState, loot: p.LootInfo) -> str:
    """'At step-001200 (step 1,200, 💎 yours): loss 0.530 · val 0.610 · lr 0.0015 · grad
    norm 0.82 · BIN L2 84% · capitals 71%': the numbers of the run where the loot was taken."""
    parts = [f"loss {loot.train_loss:.3f}" if loot.train_loss is not None else "loss --"]
    if loot.val_loss is not None:
        parts.append(f"val {loot.val_loss:.3f}")
    parts.append(f"lr {loot.lr:.2g}")
    grad = near(state.grad_history, loot.step)
    if grad is not None:
        parts.append(f"grad norm {grad:.2f}")
    parts += [f"{s.skill.upper()} L{s.level} {s.accuracy:.0%}" for s in loot.skills]
    parts += [f"{suite} {score:.0%}" for suite, score in loot.metrics]
    if not loot.skills:
        parts.append("not evaluated (e in the Vault)")
    why = REASON_WORD.get(loot.reason, (loot.reason, ""))[0]
    head = f"At {loot.name} (step {loot.step:,}, {REASON_ICON.get(loot.reason, '•')} {why})"
    return f"{head}: {' · '.join(parts)}"


def schedule_line(state: GameState) -> str:
    """ "lr 1.2e-03 now · cosine from 2e-03, warmup 50, to ×0.1 over 20,000 steps"."""
    train: dict[str, Any] = state.config.get("train", {})
    now = f"lr {state.lr:.2e} now" if state.lr is not None else "lr —"
    phase = current_phase(state)
    if phase is not None:
        return f"{now} · campaign phase {phase}"
    if not train:
        return now
    shape = train.get("schedule", "cosine")
    tail = (
        ""
        if shape == "constant"
        else (f", to ×{train.get('min_lr_ratio', 0.1):g} over {int(train.get('decay_steps', 0)):,} steps")
    )
    return (
        f"{now} · {shape} from {float(train.get('lr', 0)):.0e}, warmup {train.get('warmup_steps', 0)}{tail}"
    )


def current_phase(state: GameState) -> str | None:
    campaign = state.campaign
    if campaign is None or campaign.finished:
        return None
    phase = campaign.phases[campaign.current]
    return f"{phase.name}: {phase.schedule}"


def grad_line(state: GameState) -> str:
    clip = state.config.get("train", {}).get("grad_clip")
    norm = f"{state.grad_norm:.3f}" if state.grad_norm is not None else "—"
    clipped = ""
    if clip and state.grad_norm is not None and state.grad_norm > clip:
        clipped = " (clipped)"
    return f"grad norm {norm}{clipped}" + (f" · clip at {clip:g}" if clip else " · no clipping")


def sources_line(state: GameState) -> str:
    """Skills never repeat an example (no epochs); a quest says its epoch and row."""
    parts = [f"{s.icon} {s.id.upper()} L{s.level}" for s in state.skills]
    line = "skills " + " · ".join(parts) + " (generated afresh: no epochs)" if parts else "skills —"
    quest = state.active_quest
    if quest is not None:
        row = quest.seen - (quest.epoch - 1) * quest.rows if quest.rows else quest.seen
        line += f"\nquest {quest.name}: epoch {quest.epoch} of {quest.epochs}, row {row:,} of {quest.rows:,}"
    return line


def pace_line(state: GameState) -> str:
    stats = state.stats
    pace = f"{stats.steps_per_minute:.0f} steps/min · " if stats.steps_per_minute else ""
    return (
        f"tokens seen {stats.tokens_seen:,} · {state.tokens_per_s:,.0f} tokens/s · {pace}"
        f"{state.masked_fraction:.0%} of row tokens not trained on (prompts, padding)"
    )


class StatsScreen(SubScreen):
    BINDINGS = [
        Binding("escape,i", "app.pop_screen", "Back"),
        Binding("g", "next_chart", "Chart", tooltip="Chart: skill accuracy, learning rate, gradient norm"),
    ]

    def __init__(self, state: GameState, loot: p.LootInfo | None = None) -> None:
        """``loot``: open at a loot (the Vault's i): its numbers first, its step marked."""
        super().__init__()
        self.state = state
        self.chart = "skills"
        self.loot = loot

    def compose(self) -> ComposeResult:
        yield Header(icon="📈")
        with Vertical(id="stats"):
            yield Static(id="stats-numbers")
            yield HistoryChart(id="stats-chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.show(self.state)

    def show(self, state: GameState, chart: bool = True) -> None:
        """The numbers (cheap, every frame); the chart only when ``chart``."""
        self.state = state
        lines = [schedule_line(state), grad_line(state), pace_line(state), sources_line(state)]
        if self.loot is not None:
            lines.insert(0, loot_line(state, self.loot))
        self.query_one("#stats-numbers", Static).update(Text("\n".join(lines)))
        if chart:
            self._chart()

    def _chart(self) -> None:
        chart = self.query_one(HistoryChart)
        chart.marker = (self.loot.step, self.loot.name) if self.loot is not None else None
        if self.chart == "skills":
            series: dict[str, list[tuple[int, float]]] = {}
            for point in self.state.skill_history:
                label = point.skill.upper()
                series.setdefault(label, []).append((point.step, point.accuracy * 100))
            chart.set_series(
                series, (0.0, 100.0), "eval accuracy % by step", "no eval yet: the first comes with its step"
            )
        elif self.chart == "lr":
            chart.set_series(
                {"lr": list(self.state.lr_history)}, None, "learning rate by step", "no step yet"
            )
        else:
            grads = {"grad norm": list(self.state.grad_history)}
            chart.set_series(grads, None, "gradient norm by step (before clipping)", "no step yet")

    def action_next_chart(self) -> None:
        self.chart = CHARTS[(CHARTS.index(self.chart) + 1) % len(CHARTS)]
        self._chart()
