"""The Guild: a skill tree per skill."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from engine.protocol.messages import SkillInfo
from tui.screens.sub_screen import SubScreen
from tui.widgets.skill_panel import SkillPanel


class GuildScreen(SubScreen):
    BINDINGS = [Binding("escape,g", "app.pop_screen", "Back to the Tavern")]

    def __init__(
        self,
        skills: tuple[SkillInfo, ...],
        eval_every: int = 0,
        steps_per_minute: float = 0.0,
        hero: str = "DIO",
    ) -> None:
        super().__init__()
        self.skills = skills
        self.hero = hero
        self.eval_every = eval_every  # with the pace: each gate's ETA
        self.steps_per_minute = steps_per_minute

    def compose(self) -> ComposeResult:
        yield Header(icon="⚔")
        with VerticalScroll(id="guild"):
            if not self.skills:
                yield Static("No skills yet: the engine has not reported any.", id="no-skills")
            for info in self.skills:
                yield SkillPanel(info, self.eval_every, self.steps_per_minute, self.hero)
        yield Footer(compact=True)

    async def show(
        self, skills: tuple[SkillInfo, ...], eval_every: int = 0, steps_per_minute: float = 0.0
    ) -> None:
        self.eval_every, self.steps_per_minute = eval_every, steps_per_minute
        if [s.id for s in skills] != [s.id for s in self.skills]:
            self.skills = skills  # opened before the engine reported its skills
            await self.recompose()
            return
        self.skills = skills
        for info in skills:
            for panel in self.query(SkillPanel):
                if panel.id == f"skill-{info.id}":
                    panel.eval_every, panel.steps_per_minute = eval_every, steps_per_minute
                    panel.info = info
