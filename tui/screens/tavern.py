"""The Tavern: the main screen. It owns no state; the app hands it a GameState."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header

from engine.protocol.messages import QuestInfo, SkillInfo
from engine.protocol.names import duration
from tui.state import GameState
from tui.widgets.battle import BattlePanel
from tui.widgets.hero_card import HeroCard, gear_line
from tui.widgets.loot_feed import LootFeed
from tui.widgets.loss_chart import LossChart
from tui.widgets.status_bar import StatusBar


def quest_line(quest: QuestInfo) -> str:
    bar = 12
    filled = round(quest.fraction * bar)
    return (
        f"📜 {quest.name} {'▰' * filled}{'▱' * (bar - filled)} "
        f"{quest.seen:,}/{quest.total:,} rows · epoch {quest.epoch}/{quest.epochs}"
    )


def skill_line(skill: SkillInfo) -> str:
    """'BIN L2 86%': each skill's level and its latest eval (ACC is their mean)."""
    latest = f" {skill.evals[-1]:.0%}" if skill.evals else ""
    return f"{skill.id.upper()} L{skill.level}{latest}"


def _num(value: float) -> str:
    return f"{value:,.0f}"


class TavernScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Header(icon="⚔")
        with Horizontal(id="top"):
            yield HeroCard(id="hero")
            yield BattlePanel(id="battle")
        with Horizontal(id="bottom"):
            yield LossChart(id="chart")
            yield LootFeed(id="loot")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#battle").border_title = "battle"

    def show(self, state: GameState) -> None:
        """Push the state's values down into the widgets."""
        card = self.query_one(HeroCard)
        card.hero = state.hero or "DIO"
        card.title = state.looks.get("title", "")
        card.model = state.model
        card.stats = state.stats
        params = f"{state.params / 1e6:.1f}M params" if state.params else ""
        skills = " · ".join(skill_line(s) for s in state.skills)
        played = f"trained {duration(state.stats.seconds_trained)}" if state.stats.seconds_trained else ""
        # The device is on the gear line (a GPU or "no GPU"), so the detail fits 80 columns.
        card.detail = " · ".join(x for x in (params, played) if x) + (f"\n{skills}" if skills else "")
        plan = state.memory_plan.split(" (")[0]  # "est. 0.2 GiB RAM"
        card.gear = (
            (gear_line(state.gpu) + (f" · {plan}" if plan else "")) if state.link == "connected" else ""
        )
        battle = self.query_one(BattlePanel)
        battle.step = state.stats.step
        battle.damage = state.last_damage
        battle.source = state.source
        battle.hero = state.hero_name
        battle.level = state.stats.level
        battle.look = state.looks.get("portrait") or "dio"
        task = state.running_task
        if task is not None and task.kind != "ask":
            battle.news = f"📖 {task.label}: {task.done}/{task.total}" if task.total else f"📖 {task.label}…"
        else:
            battle.news = state.log[-1] if state.log else ""
        quest = state.active_quest
        battle.quest = quest_line(quest) if quest else ""
        self.query_one(LootFeed).loot = tuple(state.loot)
        self.query_one(LossChart).set_series(state.train_losses, state.val_losses)
        bar = self.query_one(StatusBar)
        bar.word = state.status_word
        if state.link == "connecting":
            bar.detail = f"{state.hero_name} is waking up (loading the hero) {state.waited:.0f}s"
        elif state.link == "lost":
            bar.detail = f"{state.error or 'the engine stopped'} · r restarts from the last loot"
        else:
            # "learns from": the share of tokens with a loss (the assistant's answers); the
            # rest (prompts, padding) are masked out (the bar's tooltip says so)
            share = f" · learns from {1 - state.masked_fraction:.0%}" if state.masked_fraction else ""
            # The step is on the hero card; the bar has the pace (steps/min makes the ETAs).
            pace = state.stats.steps_per_minute
            speed = f"{pace:,.0f} steps/min · " if pace else f"step {state.stats.step:,} · "
            bar.detail = f"{speed}{_num(state.tokens_per_s)} tok/s · {_phase(state)}{state.source}{share}"

    def flash(self, banner: str) -> None:
        """A moment on screen (level up, loot) that clears itself."""
        battle = self.query_one(BattlePanel)
        battle.banner = banner

        def clear() -> None:
            if battle.banner == banner:
                battle.banner = ""

        self.set_timer(4.0, clear)


def _phase(state: GameState) -> str:
    """The campaign phase being trained ("🗺 general 1/2 · "), or nothing."""
    campaign = state.campaign
    if campaign is None or campaign.finished:
        return ""
    return f"🗺 {campaign.phases[campaign.current].name} {campaign.current + 1}/{len(campaign.phases)} · "
