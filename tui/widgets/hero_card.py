"""The hero card: level, XP bar to the next level, ATK / DEF / ACC / gold."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.protocol.messages import GpuStats, HeroStats
from tui.eta import level_eta
from tui.widgets.battle import rank_of


def gear_line(gpu: GpuStats) -> str:
    """'⚙ H100 87% · mana 41.0/80.0 GiB · 64°C · 310 W'; '⚙ no GPU' without one.
    Each part is left out when that metric is missing."""
    if not gpu.available:
        return f"⚙ {gpu.reason}"
    name = gpu.name.replace("NVIDIA ", "").split(" ")[0] or "GPU"
    parts = [f"⚙ {name}" + (f" {gpu.utilization:.0f}%" if gpu.utilization is not None else "")]
    if gpu.memory_used is not None and gpu.memory_total:
        parts.append(f"mana {gpu.memory_used / 2**30:.1f}/{gpu.memory_total / 2**30:.1f} GiB")
    if gpu.temperature is not None:
        parts.append(f"{gpu.temperature:.0f}°C")
    if gpu.power_watts is not None:
        parts.append(f"{gpu.power_watts:.0f} W")
    return " · ".join(parts)


def bar(fraction: float, width: int) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


CARD_HELP = (
    "ATK: 1 / the smoothed training loss (higher is better)\n"
    "DEF: 1 / the validation loss\n"
    "ACC: the mean of each skill's latest eval accuracy (each skill's own is on the line below)\n"
    "GOLD: earned by finished quests and hero levels; spend it in the Market ($)\n"
    "L2 in 12m: the next level at the pace of the last ~50 steps\n"
    "grade: the run's health, A-F (realm status explains each part)"
)


class HeroCard(Widget):
    stats: reactive[HeroStats] = reactive(HeroStats, layout=False)
    hero: reactive[str] = reactive("DIO")
    title: reactive[str] = reactive("")  # bought in the Market: "the Tireless"
    model: reactive[str] = reactive("")
    detail: reactive[str] = reactive("")
    gear: reactive[str] = reactive("")  # the GPU (gear) and its memory (mana)

    def render(self) -> Text:
        s = self.stats
        eta = level_eta(s)
        eta = f" {eta}" if eta else ""
        # The bar gives up the room the ETA needs, so the line never wraps at 80 columns.
        width = max(4, self.size.width - 9 - len(eta))
        xp = s.xp_into_level
        text = Text()
        text.append(f"Level {s.level} {rank_of(s.level)[1]}", style="bold yellow")
        text.append(f"  step {s.step:,}\n", style="dim")
        text.append("XP ", style="bold")
        text.append(bar(xp / s.xp_per_level, width), style="green")
        text.append(f" {xp * 100 // s.xp_per_level:>3}%")
        text.append(f"{eta}\n", style="dim")
        text.append("ATK ", style="bold red")
        text.append(f"{s.atk:.2f}  ")
        text.append("DEF ", style="bold blue")
        text.append(f"{s.defense:.2f}")
        if s.grade:  # here, not on the loss line: at 80 columns that line wrapped
            text.append("  grade ", style="dim")
            text.append(s.grade, style="bold")
        text.append("\n")
        text.append("ACC ", style="bold magenta")
        text.append(f"{s.acc:5.0%}   " if s.acc is not None else "  --    ")
        text.append("GOLD ", style="bold yellow")
        text.append(f"{s.gold:,}\n")
        loss = f"{s.train_loss:.3f}" if s.train_loss is not None else "--"
        val = f"{s.val_loss:.3f}" if s.val_loss is not None else "--"
        text.append(f"loss {loss}  val {val}\n", style="dim")
        text.append(self.detail, style="dim")
        if self.gear:
            text.append(f"\n{self.gear}", style="cyan")
        return text

    def on_mount(self) -> None:
        self.tooltip = CARD_HELP

    def watch_hero(self) -> None:
        name = f"{self.hero.upper()} {self.title}".rstrip()
        self.border_title = f"{name} · {self.model}" if self.model else name

    def watch_model(self) -> None:
        self.watch_hero()

    def watch_title(self) -> None:
        self.watch_hero()
