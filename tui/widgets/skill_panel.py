"""One skill's tree in the Guild: levels as nodes, the gate's progress, the accuracy
history at the current level, and a sample problem with DIO's latest answer."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from engine.protocol.messages import SkillInfo
from tui.eta import gate_eta


def tree_text(info: SkillInfo) -> Text:
    text = Text()
    mastered = set(info.mastered)
    for level in range(1, info.max_level + 1):
        if level in mastered or level < info.level:
            text.append(f"✔{level}", style="bold green")
        elif level == info.level:
            text.append(f"▶{level}", style="bold reverse yellow")
        else:
            text.append(f"·{level}", style="dim")
        text.append(" ")
    return text


def gate_text(info: SkillInfo, eval_every: int = 0, steps_per_minute: float = 0.0) -> Text:
    text = Text()
    text.append("gate: ", style="bold")
    window = min(info.gate_window, len(info.evals))
    text.append(
        f"{info.gate_passes} of {info.gate_window} evals ≥ {info.threshold:.0%}",
        style="green" if info.gate_passes == info.gate_window else "",
    )
    if info.evals:
        recent = ", ".join(f"{a:.0%}" for a in info.evals[-window:])
        text.append(f"   last: {recent}", style="dim")
    else:
        text.append("   no eval at this level yet", style="dim")
    text.append(f"\nnext level: {gate_eta(info, eval_every, steps_per_minute)}", style="dim")
    return text


BARS = "▁▂▃▄▅▆▇█"
HISTORY_SHOWN = 40  # evals drawn (the newest)


def history_text(info: SkillInfo) -> Text:
    """The evals at this level on a fixed 0-100% scale (a plain sparkline scales to its
    own min and max, so a single 0% eval drew a full bar). Bars at or over the gate's
    threshold are green."""
    text = Text()
    text.append("history ", style="bold")
    if not info.evals:
        text.append("0% ┤ no eval at this level yet ├ 100%", style="dim")
        return text
    text.append("0% ┤", style="dim")
    for accuracy in info.evals[-HISTORY_SHOWN:]:
        bar = BARS[min(len(BARS), math.ceil(accuracy * len(BARS))) - 1] if accuracy > 0 else " "
        text.append(bar, style="green" if accuracy >= info.threshold else "yellow")
    text.append(f"├ 100%  ({len(info.evals)} eval{'s' * (len(info.evals) != 1)}, newest right)", style="dim")
    return text


def sample_text(info: SkillInfo, hero: str = "DIO") -> Text:
    text = Text()
    if not info.sample_prompt:
        return Text("sample: after the first eval", style="dim")
    lines = info.sample_prompt.splitlines()
    # The line that carries the problem: BIN's "Compute: …", SY's first clue.
    prompt = next((x for x in lines if x.startswith(("Compute:", "1. "))), lines[-1])
    text.append("sample: ", style="bold")
    text.append(prompt + "\n")
    # The verdict first: a long answer (SY's JSON) is cut with an ellipsis at the panel's
    # edge instead of wrapping mid-JSON (the Static does not wrap).
    text.append(f"{hero} ", style="bold")
    text.append(
        "✔ " if info.sample_correct else "✘ ", style="bold green" if info.sample_correct else "bold red"
    )
    answer = info.sample_answer.strip().splitlines()[0] if info.sample_answer.strip() else "(silence)"
    text.append(answer)
    return text


class SkillPanel(Vertical):
    info: reactive[SkillInfo | None] = reactive(None, recompose=False)

    def __init__(
        self, info: SkillInfo, eval_every: int = 0, steps_per_minute: float = 0.0, hero: str = "DIO"
    ) -> None:
        super().__init__(id=f"skill-{info.id}", classes="skill-panel")
        self.hero = hero
        self.set_reactive(SkillPanel.info, info)
        self.eval_every = eval_every  # with the pace: the gate's ETA
        self.steps_per_minute = steps_per_minute

    def compose(self) -> ComposeResult:
        yield Static(id="tree")
        yield Static(id="gate")
        yield Static(id="history")
        yield Static(id="sample")

    def on_mount(self) -> None:
        self._show(self.info)

    def watch_info(self, info: SkillInfo | None) -> None:
        if self.is_mounted:
            self._show(info)

    def _show(self, info: SkillInfo | None) -> None:
        if info is None:
            return
        self.border_title = f"{info.icon} {info.name} — level {info.level} / {info.max_level}"
        self.query_one("#tree", Static).update(tree_text(info))
        self.query_one("#gate", Static).update(gate_text(info, self.eval_every, self.steps_per_minute))
        self.query_one("#history", Static).update(history_text(info))
        self.query_one("#sample", Static).update(sample_text(info, self.hero))
