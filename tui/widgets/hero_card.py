"""The hero card: level, XP bar to the next level, ATK / DEF / ACC / gold."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.protocol import HeroStats


def bar(fraction: float, width: int) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


class HeroCard(Widget):
    stats: reactive[HeroStats] = reactive(HeroStats, layout=False)
    hero: reactive[str] = reactive("DIO")
    model: reactive[str] = reactive("")
    detail: reactive[str] = reactive("")

    def render(self) -> Text:
        s = self.stats
        width = max(8, self.size.width - 14)
        xp = s.xp_into_level
        text = Text()
        text.append(f"Level {s.level}", style="bold yellow")
        text.append(f"   step {s.step:,}\n", style="dim")
        text.append("XP ", style="bold")
        text.append(bar(xp / s.xp_per_level, width), style="green")
        text.append(f" {xp * 100 // s.xp_per_level:>3}%\n")
        text.append("ATK ", style="bold red")
        text.append(f"{s.atk:5.2f}   ")
        text.append("DEF ", style="bold blue")
        text.append(f"{s.defense:5.2f}\n")
        text.append("ACC ", style="bold magenta")
        text.append(f"{s.acc:5.0%}   " if s.acc is not None else "  --    ")
        text.append("GOLD ", style="bold yellow")
        text.append(f"{s.gold:,}\n")
        loss = f"{s.train_loss:.3f}" if s.train_loss is not None else "--"
        val = f"{s.val_loss:.3f}" if s.val_loss is not None else "--"
        text.append(f"loss {loss}  val {val}\n", style="dim")
        text.append(self.detail, style="dim")
        return text

    def watch_hero(self) -> None:
        self.border_title = f"{self.hero.upper()} · {self.model}" if self.model else self.hero.upper()

    def watch_model(self) -> None:
        self.watch_hero()
