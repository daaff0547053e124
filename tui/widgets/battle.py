"""The battle panel: DIO fights the current task. Each step event is a blow; the
damage DIO takes is the loss of that step. Every ``STEPS_PER_FOE`` steps a foe falls."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

STEPS_PER_FOE = 50
FOES = ("Slime", "Goblin", "Wraith", "Golem", "Hydra", "Lich", "Wyvern", "Basilisk")
DIO_POSES = ("(ง •̀_•́)ง", "(ง'̀-'́)ง", "ᕦ(ò_óˇ)ᕤ")
POSE_CELLS = 12


def foe_name(step: int, source: str) -> str:
    foe = FOES[(step // STEPS_PER_FOE) % len(FOES)]
    return f"{foe} of {source}" if source else foe


class BattlePanel(Widget):
    step: reactive[int] = reactive(0)
    damage: reactive[float | None] = reactive(None)
    source: reactive[str] = reactive("")
    banner: reactive[str] = reactive("")  # a moment: level up, loot, paused…
    news: reactive[str] = reactive("")
    quest: reactive[str] = reactive("")  # the active quest's progress line
    hero: reactive[str] = reactive("DIO")

    def render(self) -> Text:
        step = self.step
        into = step % STEPS_PER_FOE
        foe_hp = STEPS_PER_FOE - into
        width = max(6, self.size.width - 24)
        text = Text()
        text.append(f"Battle {step // STEPS_PER_FOE + 1}", style="bold")
        text.append(f"  vs {foe_name(step, self.source)}\n", style="bold red")
        pose = DIO_POSES[step % len(DIO_POSES)]
        # Padded by terminal cells, not characters: the poses' combining marks would make
        # the HP bar's edge jump from step to step.
        text.append(pose + " " * max(1, POSE_CELLS - cell_len(pose)), style="cyan")
        filled = round(foe_hp / STEPS_PER_FOE * width)
        text.append("█" * filled + "░" * (width - filled), style="red")
        text.append(f" {foe_hp:>2}/{STEPS_PER_FOE}\n")
        if self.damage is not None:
            text.append(f"{self.hero} takes ", style="dim")
            text.append(f"{self.damage:.3f}", style="bold red")  # no sign: a minus reads as healing
            text.append(" damage (the step's loss)\n", style="dim")
        else:
            text.append(f"{self.hero} readies for battle…\n", style="dim")
        if self.quest:
            text.append(f"{self.quest}\n", style="bold magenta")
        if self.banner:
            text.append(f"{self.banner}\n", style="bold reverse yellow")
        text.append(self.news, style="italic")
        return text
