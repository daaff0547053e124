"""The Guild: a skill tree per skill."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from engine.protocol.messages import SkillInfo
from tui.widgets.skill_panel import SkillPanel


class GuildScreen(Screen[None]):
    BINDINGS = [Binding("escape,g", "app.pop_screen", "Back to the Tavern")]

    def __init__(self, skills: tuple[SkillInfo, ...]) -> None:
        super().__init__()
        self.skills = skills

    def compose(self) -> ComposeResult:
        yield Header(icon="⚔")
        with VerticalScroll(id="guild"):
            if not self.skills:
                yield Static("No skills yet: the engine has not reported any.", id="no-skills")
            for info in self.skills:
                yield SkillPanel(info)
        yield Footer(compact=True)

    async def show(self, skills: tuple[SkillInfo, ...]) -> None:
        if [s.id for s in skills] != [s.id for s in self.skills]:
            self.skills = skills  # opened before the engine reported its skills
            await self.recompose()
            return
        self.skills = skills
        for info in skills:
            for panel in self.query(SkillPanel):
                if panel.id == f"skill-{info.id}":
                    panel.info = info
