"""The battle panel: DIO fights the current task. Each step event is a blow; the
damage DIO takes is the loss of that step, and its number rises over the fight and fades
(two rows: fresh, then faded, then gone). Every ``STEPS_PER_FOE`` steps a foe falls.
DIO's portrait grows with its level: a sword at level 2, a shield at 5, a crown at 10."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

STEPS_PER_FOE = 50
FOES = ("Slime", "Goblin", "Wraith", "Golem", "Hydra", "Lich", "Wyvern", "Basilisk")
DIO_POSES = ("(ง •̀_•́)ง", "(ง'̀-'́)ง", "ᕦ(ò_óˇ)ᕤ")
# Portraits bought in the Market (engine/game/shop.py names them by these ids); each pose
# fits 10 cells, so with the level's gear it stays inside POSE_CELLS.
POSE_SETS = {
    "dio": DIO_POSES,
    "cat": ("(=^･ω･^=)", "(=^-ω-^=)", "(=ﾟωﾟ=)ﾉ"),
    "robot": ("[o_o]", "[O_O]", "[¬º-°]¬"),
    "wizard": ("(∩ᐛ)⊃━☆", "(∩｀-´)⊃━☆", "(∩ᐛ)⊃━★"),
}
POSE_CELLS = 13
# (from level, rank, what DIO carries before and after its pose)
PORTRAITS = (
    (0, "Novice", "", ""),
    (2, "Squire", "", "⚔"),
    (5, "Knight", "🛡", "⚔"),
    (10, "Champion", "👑", "⚔"),
)
FLOAT_SECONDS = 0.6  # a damage number moves up a row this often, then fades out


def portrait(level: int, step: int, look: str = "dio") -> str:
    """DIO as its level shows it: the pose changes each blow, the gear with the level;
    ``look`` is the portrait worn (an unknown one: DIO's own)."""
    _, _, before, after = rank_of(level)
    poses = POSE_SETS.get(look, DIO_POSES)
    return before + poses[step % len(poses)] + after


def rank_of(level: int) -> tuple[int, str, str, str]:
    return [p for p in PORTRAITS if level >= p[0]][-1]


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
    level: reactive[int] = reactive(0)
    look: reactive[str] = reactive("dio")  # the portrait worn (the Market)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.floaters: list[tuple[float, int]] = []  # (damage, rows risen): newest first

    def on_mount(self) -> None:
        self.float_timer = self.set_interval(FLOAT_SECONDS, self._rise)

    def watch_damage(self, old: float | None, new: float | None) -> None:
        if new is not None and new != old:
            self.floaters = [(new, 0), *self.floaters][:2]

    def _rise(self) -> None:
        """Each number goes up a row and fades; past the top row it is gone."""
        if self.floaters:
            self.floaters = [(d, age + 1) for d, age in self.floaters if age < 1]
            self.refresh()

    def _float_rows(self, left: int) -> Text:
        """Two rows above the foe's HP bar: the newest damage bright, the last one faded."""
        text = Text()
        for row in (1, 0):  # the top row holds the older, risen number
            text.append(" " * left)
            shown = [d for d, age in self.floaters if age == row]
            if shown:
                text.append(f"{shown[0]:.3f}", style="dim red" if row else "bold red")  # no sign: see below
            text.append("\n")
        return text

    def render(self) -> Text:
        step = self.step
        into = step % STEPS_PER_FOE
        foe_hp = STEPS_PER_FOE - into
        width = max(6, self.size.width - 24)
        text = Text()
        text.append(f"Battle {step // STEPS_PER_FOE + 1}", style="bold")
        text.append(f"  vs {foe_name(step, self.source)}\n", style="bold red")
        text.append_text(self._float_rows(POSE_CELLS + width // 2 - 3))
        pose = portrait(self.level, step, self.look)
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
