"""The Realm app: one background link to the engine, state folded from its events,
pushed down into the Tavern's widgets."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from time import monotonic
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer

from engine.protocol import messages as p
from tui.link import Connector, DownReport, EngineLink
from tui.messages import (
    EngineMessage,
    ExportLoot,
    LinkLost,
    OpenOracle,
    OpenStats,
    OpenVault,
    SendCommand,
)
from tui.screens.achievements import AchievementsScreen
from tui.screens.add_quest import AddQuestScreen
from tui.screens.armory import ArmoryScreen
from tui.screens.campaign import CampaignScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.engine_down import EngineDownScreen
from tui.screens.guild import GuildScreen
from tui.screens.help import HelpScreen
from tui.screens.log_book import LogBookScreen
from tui.screens.market import MarketScreen
from tui.screens.oracle import OracleScreen
from tui.screens.prompt import PromptScreen
from tui.screens.quest_board import QuestBoardScreen
from tui.screens.quit import QuitScreen
from tui.screens.start import StartScreen
from tui.screens.stats import StatsScreen
from tui.screens.tasks import TasksScreen
from tui.screens.tavern import TavernScreen
from tui.screens.vault import CompareScreen, VaultScreen
from tui.state import GameState
from tui.toasts import Toast, ToastQueue


def away_text(away: p.AwaySummary, hero: str = "DIO") -> str:
    """'While you were away (42 min): DIO fought 2,310 steps, 2 levels up, reached BIN L3,
    1 quest done, +200 gold, 12 evals, 3 loot; the engine crashed once and resumed.'"""
    minutes = away.seconds / 60
    parts = [f"{hero} fought {away.steps_gained:,} steps"]
    if away.levels_gained:
        parts.append(f"{away.levels_gained} level{'s' * (away.levels_gained != 1)} up")
    if away.skill_levels:
        parts.append("reached " + " and ".join(away.skill_levels))
    if away.quests_done:
        parts.append(f"{away.quests_done} quest{'s' * (away.quests_done != 1)} done")
    if away.gold_gained:
        parts.append(f"+{away.gold_gained:,} gold")
    if away.phases:
        parts.append("finished campaign phase " + " and ".join(away.phases))
    if away.evals:
        parts.append(f"{away.evals} eval{'s' * (away.evals != 1)}")
    if away.loot_steps:
        parts.append(f"{len(away.loot_steps)} loot")
    troubles = []
    if away.crashes:
        times = "once" if away.crashes == 1 else f"{away.crashes} times"
        troubles.append(f"the engine crashed {times} and resumed from loot")
    elif away.restarted:
        troubles.append("the engine restarted meanwhile")
    if away.interventions:
        troubles.append(f"the watchdog stepped in {away.interventions}× (see the log)")
    if away.grade:
        parts.append(f"run grade {away.grade}")
    tail = "; " + "; ".join(troubles) if troubles else ""
    return f"While you were away ({minutes:.0f} min): {', '.join(parts)}{tail}."


SCREEN_KEYS: tuple[tuple[str, Any], ...] = (  # every screen and dialog: `?` lists their keys
    ("Quest board", QuestBoardScreen),
    ("Add quest", AddQuestScreen),
    ("Guild", GuildScreen),
    ("Vault", VaultScreen),
    ("Compare", CompareScreen),
    ("Oracle", OracleScreen),
    ("Tasks", TasksScreen),
    ("Achievements", AchievementsScreen),
    ("Campaign", CampaignScreen),
    ("Log book", LogBookScreen),
    ("Stats", StatsScreen),
    ("Armory", ArmoryScreen),
    ("Market", MarketScreen),
    ("Start screen (realm play with several heroes)", StartScreen),
    ("Quit dialog", QuitScreen),
    ("Confirm", ConfirmScreen),
    ("Prompt", PromptScreen),
    ("Engine down", EngineDownScreen),
    ("Help", HelpScreen),
)
TOASTED = ("eval", "suite", "retest")
ACHIEVEMENTS_GATHERED_S = 0.5  # achievements unlocked this close together share a toast
BELL_EVENTS = (
    p.LevelledUp,
    p.SkillLevelledUp,
    p.QuestCompleted,
)  # and the watchdog's alarms  # finished tasks whose result is news
FRAME_SECONDS = 0.5
DOWN_LINES = 8  # of a traceback or the log: the last ones say what went wrong


def champion_of(loot: p.LootInfo, earlier: Iterable[p.LootInfo]) -> str:
    """The skills (and suites) by which ``loot`` beats every earlier loot: "bin, capitals";
    "" when none (a first loot crowns nothing: there was no contest)."""
    earlier = list(earlier)
    if not earlier:
        return ""
    won = []
    for score in loot.skills:
        rivals = [(s.level, s.accuracy) for x in earlier for s in x.skills if s.skill == score.skill]
        if rivals and score.accuracy > 0 and (score.level, score.accuracy) > max(rivals):
            won.append(score.skill)
    for suite, value in loot.metrics:
        rivals_m = [v for x in earlier for name, v in x.metrics if name == suite]
        if rivals_m and value > max(rivals_m):
            won.append(suite)
    return ", ".join(won)


def help_text(binding: Binding) -> str:
    """What `?` says of a key: the longer tooltip where the footer's word is short."""
    return binding.tooltip or binding.description


def keys_shown(app: App[Any], binding: Binding) -> str:
    """A binding's keys as a player types them: "esc ? q", not "escape,question_mark,q"."""
    if binding.key_display:
        return binding.key_display
    return " ".join(app.get_key_display(Binding(key.strip(), "")) for key in binding.key.split(","))


def last_lines(text: str, count: int = DOWN_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-count:])


class RealmApp(App[str]):
    TITLE = "Realm of Training"
    CSS_PATH = "realm.tcss"
    BINDINGS = [
        # Two bindings for one key, so the footer says what space does now (check_action).
        Binding("space", "toggle_pause('pause')", "Pause"),
        Binding("space", "toggle_pause('resume')", "Resume"),
        # The footer shows the keys a newcomer needs and fits 80 columns; e, t and p are
        # in `?` and the palette like every other key.
        Binding("s", "save_loot", "Save", tooltip="Save loot now"),
        Binding("e", "run_eval", "Eval", show=False),
        Binding("g", "guild", "Guild"),
        Binding("b", "quest_board", "Quests"),
        Binding("v", "vault", "Vault"),
        Binding("o", "oracle", "Oracle"),
        Binding("t", "tasks", "Tasks", show=False),
        Binding("p", "spar", "Spar", show=False),
        Binding("a", "achievements", "Achievements", show=False),
        Binding(
            "c",
            "campaign",
            "Campaign",
            show=False,
            tooltip="The campaign map: phases, the current one, its gate",
        ),
        Binding("l", "log_book", "Log", show=False, tooltip="The log book: every event, with filters"),
        Binding(
            "i",
            "stats",
            "Stats",
            show=False,
            tooltip="Stats: learning rate, grad norm, tokens, each skill's evals as a chart",
        ),
        Binding("m", "armory", "Armory", show=False, tooltip="The Armory: the hero's settings, checked"),
        Binding(
            "dollar_sign",
            "market",
            "Market",
            key_display="$",
            show=False,
            tooltip="The Market: spend gold on a title, a portrait, a colour theme",
        ),
        Binding("question_mark", "keys", "Keys", key_display="?"),
        Binding("q", "leave", "Quit"),
        Binding("r", "restart_engine", "Restart engine", show=False),
    ]

    def __init__(
        self,
        connector: Connector,
        engine_alive: Callable[[], bool] = lambda: True,
        restart_engine: Callable[[], Any] | None = None,
        down_report: Callable[[], DownReport] = DownReport,
        connect_timeout: float = 120.0,
        export_loot: Callable[[str, str], tuple[bool, str]] | None = None,
        saved: GameState | None = None,
        notice: str = "",
    ) -> None:
        """``saved``: what the save folder says (tui/saved.py), shown until the engine's
        first snapshot, so a returning hero's first frame is its own. ``notice``: a word
        from the command line for the first frame (flags a running engine ignores)."""
        super().__init__()
        self.notice = notice
        self.export_loot_fn = export_loot
        self.state = saved or GameState()
        self.restart_engine_fn = restart_engine
        self.down_report = down_report
        self.link = EngineLink(connector, self.post_message, engine_alive, connect_timeout)
        self.stopping = False
        self._refused: set[str] = set()  # quest refusals already toasted (their reply says it again)
        self._unlocked: list[p.AchievementInfo] = []  # waiting to be toasted together
        self._dirty = False
        self.tavern = TavernScreen()
        self.toasts = ToastQueue()
        self._toast_timer: Timer | None = None

    # ------------------------------------------------------------------ toasts

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast (the screens' too) waits its turn when the screen holds enough."""
        timeout = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        toast = Toast(message, title, severity, timeout, markup)
        self._show(self.toasts.offer(toast, monotonic(), self.size.height))

    def _toasts_due(self) -> None:
        self._show(self.toasts.due(monotonic(), self.size.height))

    def _show(self, toasts: list[Toast]) -> None:
        for toast in toasts:
            super().notify(
                toast.message,
                title=toast.title,
                severity=toast.severity,
                timeout=toast.timeout,
                markup=toast.markup,
            )
        if self._toast_timer is not None:
            self._toast_timer.stop()
            self._toast_timer = None
        when = self.toasts.next_change()
        if when is not None:
            self._toast_timer = self.set_timer(max(when - monotonic(), 0.05), self._toasts_due)

    # ------------------------------------------------------------------ lifecycle

    async def on_mount(self) -> None:
        await self.push_screen(self.tavern)
        self.tavern.show(self.state)
        self._wear_theme()
        # Step events (up to 10/s) only fold into the state; the screen catches up at
        # FRAME_SECONDS, so watching costs training almost nothing (see `realm bench`).
        self.set_interval(FRAME_SECONDS, self._frame)
        self.link.start()
        if self.notice:
            self.notify(self.notice, severity="warning", timeout=15)

    def _frame(self) -> None:
        if self._dirty:
            self._dirty = False
            self.tavern.show(self.state)
            board = self._board()
            if board is not None:
                board.show(self.state.quests)  # live quest progress
            stats = self._find(StatsScreen)
            if stats is not None:
                stats.show(self.state, chart=False)  # the numbers; the chart at each eval
            market = self._find(MarketScreen)
            if market is not None:  # a level pays gold: the purse grows while it is open
                market.show(self._shop_now(), self.state.link == "connected")

    def on_unmount(self) -> None:
        self.link.close()

    # ------------------------------------------------------------------ events

    async def on_engine_message(self, message: EngineMessage) -> None:
        event = message.event
        self.state.apply(event)
        if isinstance(event, (p.StepCompleted, p.GpuTelemetry)):
            self._dirty = True
            return
        self.tavern.show(self.state)
        guild = self._showing(GuildScreen)
        if guild is not None:
            await guild.show(self.state.skills, self.state.eval_every, self.state.stats.steps_per_minute)
        board = self._board()
        if board is not None and isinstance(event, (p.QuestBoard, p.QuestCompleted, p.Snapshot)):
            board.show(self.state.quests)
        self._route(event)
        if isinstance(event, p.AchievementUnlocked):
            self._achieved(event.achievement)
        campaign = self._find(CampaignScreen)
        if campaign is not None and isinstance(event, (p.CampaignUpdated, p.Snapshot, p.EvalCompleted)):
            campaign.show(self.state.campaign)
        self._route_more(event)
        if isinstance(event, (p.ShopReply, p.Snapshot)):
            self._shopped(event)
        if isinstance(event, (p.Paused, p.Resumed, p.Snapshot, p.Stopped)):
            self.refresh_bindings()  # the footer's space: Pause or Resume
        self.sub_title = f"{self.state.hero.upper()} · {self.state.model}" if self.state.hero else ""
        self._celebrate(event)
        self._tell(event)

    def _celebrate(self, event: Any) -> None:
        """Moments: a banner in the battle panel, and a toast for the big ones."""
        hero = self.state.hero_name
        self._ring(event)
        if isinstance(event, p.Snapshot):
            for warning in event.warnings:  # a crash, a repaired ledger: said on every attach
                self.notify(warning, title="The engine says", severity="warning", timeout=20)
        match event:
            case p.Snapshot(away=away) if away is not None:
                self.notify(away_text(away, hero), title="Welcome back", timeout=12)
                self.tavern.flash(f"Welcome back! +{away.steps_gained:,} steps")
            case p.SkillLevelledUp():
                self.tavern.flash(f"🎓 SKILL UP! {event.name} level {event.level}")
                self.notify(f"{event.name} reached level {event.level}!", title="Skill up", timeout=8)
            case p.LevelledUp():
                self.tavern.flash(f"✨ LEVEL UP! {hero} is now level {event.level} ✨")
                self.notify(f"{hero} reached level {event.level}!", title="Level up")
            case p.CheckpointSaved():
                self.tavern.flash(f"💎 Loot! {event.loot.name}")
                crowned = champion_of(event.loot, self.state.loot[:-1])
                if crowned:
                    self.notify(f"{event.loot.name} is the best loot yet by {crowned}", title="New champion!")
            case p.Paused():
                self.tavern.flash(f"⏸ PAUSED at step {event.step:,}")
            case p.WatchdogIntervened():
                self._watchdog(event, hero)
            case p.CampaignUpdated(news=news) if news:
                self.tavern.flash("🗺 " + news.split(":")[0])
                self.notify(news, title="🗺 Campaign", timeout=12)
            case p.QuestCompleted():
                self.tavern.flash(f"📜 QUEST COMPLETE! {event.quest.name} +{event.gold} gold")
                self.notify(f"{event.quest.name}: +{event.gold} gold", title="Quest complete", timeout=8)

    def _route_more(self, event: Any) -> None:
        """The log book, the stats screen and the Armory, when open."""
        book, stats, armory = self._find(LogBookScreen), self._find(StatsScreen), self._find(ArmoryScreen)
        if book is not None and isinstance(event, (p.LogLine, p.LogRead)):
            book.show(self.state.log_rows, loaded=isinstance(event, p.LogRead) or book.loaded)
        if stats is not None and isinstance(event, (p.EvalCompleted, p.Snapshot, p.ConfigReply)):
            stats.show(self.state)
        if isinstance(event, p.ConfigReply):
            if armory is not None:
                armory.replied(event)
                armory.show(self.state.config, self.state.memory_plan, self.state.link == "connected")
            elif not event.dry_run:
                self.notify(event.message, title="Settings", severity="information" if event.ok else "error")
        elif armory is not None and isinstance(event, p.Snapshot):
            armory.show(self.state.config, self.state.memory_plan, True)

    def _shopped(self, event: p.ShopReply | p.Snapshot) -> None:
        """The Market's answer: the looks worn now, everywhere; the word to whoever is there."""
        self._wear_theme()
        market = self._find(MarketScreen)
        if market is not None:
            market.show(self._shop_now(), self.state.link == "connected")
        if isinstance(event, p.ShopReply):
            if market is not None:
                market.say(event.message, event.ok)
            else:
                self.notify(event.message, title="Market", severity="information" if event.ok else "error")

    def _shop_now(self) -> p.ShopInfo:
        """The Market with the gold the hero card shows now (each level pays into it)."""
        return replace(self.state.shop, purse=self.state.stats.gold)

    def _wear_theme(self) -> None:
        theme = self.state.looks.get("theme", "")
        if theme and theme != self.theme and theme in self.available_themes:
            self.theme = theme

    def _ring(self, event: Any) -> None:
        """The terminal bell at a big moment, if the player turned it on (game.bell)."""
        alarm = isinstance(event, p.WatchdogIntervened) and event.kind != "skip"
        if self.state.bell and (alarm or isinstance(event, BELL_EVENTS)):
            self.bell()

    def _watchdog(self, event: p.WatchdogIntervened, hero: str) -> None:
        if event.kind == "rollback":
            self.tavern.flash(f"🛡 WATCHDOG! Back to {event.loot}, learning rate ×{event.lr_scale:g}")
            self.notify(f"{event.reason}: back to {event.loot}, learning rate ×{event.lr_scale:g}",
                        title="Watchdog", severity="warning", timeout=12)  # fmt: skip
        elif event.kind == "pause":
            self.notify(event.reason, title=f"Watchdog paused {hero}", severity="error", timeout=30)
        else:
            self.tavern.flash(f"🛡 Spike parried at step {event.step:,}")

    def _tell(self, event: Any) -> None:
        """Notices (refusals, replies, warnings) and the ends of the link."""
        match event:
            case p.QuestRejected():
                self._refused.add(f"{event.name} refused: ")
                self.notify(event.reason, title=f"Quest refused: {event.name}", severity="error", timeout=15)
            case p.QuestReply(ok=True):
                self.notify(event.message, title="Quests", timeout=5)
            case p.QuestReply(ok=False):
                said = next((r for r in self._refused if event.message.startswith(r)), None)
                if said is not None:  # this window's own add, refused: toasted once already
                    self._refused.discard(said)
                else:
                    self.notify(event.message, title="Quests", severity="error", timeout=10)
            case p.CampaignReply(ok=False):
                self.notify(event.message, title="Campaign", severity="error", timeout=15)
            case p.SuiteReply(ok=False):
                self.notify(event.message, title="Eval suites", severity="error", timeout=12)
            case p.VaultReply():
                self.notify(event.message, title="Vault", severity="information" if event.ok else "error",
                            timeout=6 if event.ok else 12)  # fmt: skip
            case p.LogLine(level="warning" | "error") if not event.text.startswith("Quest "):
                self.notify(event.text, severity="warning")  # quest news has its own notices
            case p.Stopped() if self.stopping:
                self.exit("stopped")
            case LinkLost() if self.stopping or self.state.engine_state == "stopped":
                self.exit("stopped")
            case LinkLost():
                self._show_engine_down()

    def _find(self, kind: type[Any]) -> Any:
        """The open screen of this kind that can be drawn on. A screen just pushed has no
        widgets (its table no columns) until it has mounted; it draws the newest state in
        its own on_mount, and until then the app leaves it alone (a level's gold arriving
        in that moment once crashed the Market)."""
        return next((s for s in self.screen_stack if isinstance(s, kind) and s.is_mounted), None)

    def _showing(self, kind: type[Any]) -> Any:
        """The screen on top, when it is of this kind and mounted (see _find)."""
        return self.screen if isinstance(self.screen, kind) and self.screen.is_mounted else None

    def _achieved(self, won: p.AchievementInfo) -> None:
        # One toast for the achievements a moment brings together (the first eval unlocks
        # two): three toasts stacked covered most of an 80×24 screen.
        self._unlocked.append(won)
        if len(self._unlocked) == 1:
            self.set_timer(ACHIEVEMENTS_GATHERED_S, self._toast_achievements)
        shown = self._showing(AchievementsScreen)
        if shown is not None:
            shown.show(self.state.achievements)

    def _toast_achievements(self) -> None:
        won, self._unlocked = self._unlocked, []
        if len(won) == 1:
            self.notify(f"{won[0].title}: {won[0].how}", title="🏆 Achievement unlocked", timeout=8)
        elif won:
            titles = " · ".join(w.title for w in won)
            self.notify(f"{titles} (a: how)", title=f"🏆 {len(won)} achievements unlocked", timeout=8)

    def _route(self, event: Any) -> None:
        """Vault and Oracle events go to their screens when open."""
        vault, oracle = self._find(VaultScreen), self._find(OracleScreen)
        match event:
            case p.VaultListed() if vault is not None:
                vault.show(event)
            case p.CheckpointSaved() | p.Snapshot() if vault is not None:
                vault.show(self.state.vault or p.VaultListed(loot=tuple(self.state.loot)))
            case p.LootCompared():
                self.push_screen(CompareScreen(event))
            case p.TaskUpdated():
                tasks = self._find(TasksScreen)
                if tasks is not None:
                    tasks.show(self.state.tasks)
                if event.task.state == "done" and event.task.kind in TOASTED and event.task.result:
                    self.notify(event.task.result, title=event.task.label, timeout=8)
                elif event.task.state == "failed":
                    self.notify(event.task.result, title=f"{event.task.label} failed", severity="error")
            case p.OracleToken() if oracle is not None:
                oracle.token(event)
            case p.OracleAnswered() if oracle is not None:
                oracle.answered(event)
            case p.CommandRejected(command="Ask") if oracle is not None:
                oracle.refused(event.reason)

    def on_send_command(self, message: SendCommand) -> None:
        """A screen's request (the Quest board's keys): the app owns the link."""
        if not self.link.send(message.command):
            self._not_sent(message.failure)

    def _not_sent(self, failure: str) -> None:
        """A command the link could not send: the engine is down, or not up yet (the first
        seconds of a start, when "the engine is down" was said of a DIO still waking up)."""
        if self.state.link == "connecting":
            self.notify(
                f"{self.state.hero_name} is still waking up: try again in a moment.", severity="warning"
            )
        else:
            self.notify(failure, severity="error")

    def _show_engine_down(self) -> None:
        if isinstance(self.screen, EngineDownScreen):
            return
        report = self.down_report()
        screen = EngineDownScreen(
            report.refused or self.state.error or "the engine stopped",
            last_lines(self.state.error_detail or report.log_tail),
            self.state.last_loot_step,
            refused=bool(report.refused),
        )
        self.push_screen(screen, self._after_engine_down)

    def _after_engine_down(self, choice: str | None) -> None:
        if choice == "restart":
            self.action_restart_engine()
        elif choice == "quit":
            self.exit("down")

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_pause" and parameters:
            now = "resume" if self.state.engine_state == "paused" else "pause"
            return parameters[0] == now
        return True

    def action_help_quit(self) -> None:
        """ctrl+c, the reflex (over SSH above all): the quit dialog, as q; pressed again there,
        leave at once with DIO training on (the dialog's own binding). Textual's only said
        to press ctrl+q."""
        self.action_leave()

    async def action_quit(self) -> None:
        """ctrl+q: leave at once, DIO training on (play.py says so after the app closes)."""
        if self.state.link == "connected":
            self.link.send(p.Goodbye())
        self.exit("background")

    def action_toggle_pause(self, _shown: str = "") -> None:
        if self.state.link != "connected":
            self.bell()
            return
        if self.state.engine_state == "paused":
            self.link.send(p.Resume())
        else:
            self.state.pause_requested = True
            self.link.send(p.Pause())
        self.tavern.show(self.state)

    def action_save_loot(self) -> None:
        if not self.link.send(p.SaveNow()):
            self._not_sent("The engine is down: nothing to save.")
        else:
            self.notify("Saving loot…", timeout=2)

    def action_run_eval(self) -> None:
        if not self.link.send(p.RunEval()):
            self._not_sent("The engine is down: nothing to evaluate.")
        else:
            self.notify("Evaluating every skill (results in the Guild)…", timeout=3)

    def _toggle(self, kind: type[Screen[Any]], make: Callable[[], Screen[Any]]) -> bool:
        """A screen's key closes it when it is on top, else opens it. True: opened."""
        if isinstance(self.screen, kind):
            self.pop_screen()
            return False
        self.push_screen(make())
        return True

    def action_campaign(self) -> None:
        self._toggle(CampaignScreen, lambda: CampaignScreen(self.state.campaign, self.state.hero_name))

    def action_log_book(self) -> None:
        self._toggle(LogBookScreen, lambda: LogBookScreen(self.state.log_rows))  # it asks for the log

    def action_stats(self) -> None:
        self._toggle(StatsScreen, lambda: StatsScreen(self.state))

    def action_armory(self) -> None:
        connected = self.state.link == "connected"
        self._toggle(ArmoryScreen, lambda: ArmoryScreen(self.state.config, self.state.memory_plan, connected))

    def action_market(self) -> None:
        connected = self.state.link == "connected"
        hero = self.state.hero_name
        self._toggle(MarketScreen, lambda: MarketScreen(self._shop_now(), hero, connected))

    def action_achievements(self) -> None:
        self._toggle(AchievementsScreen, lambda: AchievementsScreen(self.state.achievements))

    def action_guild(self) -> None:
        pace = self.state.stats.steps_per_minute
        self._toggle(
            GuildScreen,
            lambda: GuildScreen(self.state.skills, self.state.eval_every, pace, self.state.hero_name),
        )

    def _board(self) -> QuestBoardScreen | None:
        return self._find(QuestBoardScreen)

    def action_quest_board(self) -> None:
        self._toggle(QuestBoardScreen, lambda: QuestBoardScreen(self.state.quests, self.state.hero_name))

    def action_spar(self) -> None:
        if not self.link.send(p.Spar()):
            self._not_sent("The engine is down: DIO cannot spar now.")
        else:
            self.notify("DIO spars: its mistakes become a high-priority quest…", timeout=4)

    def action_tasks(self) -> None:
        self._toggle(TasksScreen, lambda: TasksScreen(self.state.tasks))

    def action_vault(self, focus: str | None = None) -> None:
        self._toggle(VaultScreen, lambda: VaultScreen(self.state.vault, self.state.loot, focus))

    def on_open_vault(self, message: OpenVault) -> None:
        if not isinstance(self.screen, VaultScreen):
            self.action_vault(message.loot)

    def on_open_stats(self, message: OpenStats) -> None:
        """The Vault's i: the stats at one loot (on top of the Vault; Esc goes back to it)."""
        listed = self.state.vault.loot if self.state.vault else ()
        loot = next((x for x in (*listed, *self.state.loot) if x.name == message.loot), None)
        if loot is not None:
            self.push_screen(StatsScreen(self.state, loot))

    def action_oracle(self, loot: str | None = None) -> None:
        self._toggle(OracleScreen, lambda: OracleScreen(self.state.loot, loot, self.state.hero_name))

    def on_open_oracle(self, message: OpenOracle) -> None:
        self.action_oracle(message.loot)

    def on_export_loot(self, message: ExportLoot) -> None:
        if self.export_loot_fn is None:
            self.notify(
                "Export from here needs `realm play`; use `realm export --loot NAME DEST`.", severity="error"
            )
            return
        self.notify(f"Exporting {message.name} to {message.dest}…", timeout=4)
        export, name, dest = self.export_loot_fn, message.name, message.dest

        def work() -> None:
            ok, text = export(name, dest)
            self.call_from_thread(
                self.notify, text, title="Export", severity="information" if ok else "error", timeout=10
            )

        self.run_worker(work, thread=True, exclusive=False, group="export")

    def action_add_quest(self) -> None:
        self.push_screen(AddQuestScreen(), self._after_add_quest)

    def _after_add_quest(self, command: p.AddQuest | None) -> None:
        if command is None:
            return
        if not self.link.send(command):
            self._not_sent("The engine is down: the quest cannot be added now.")
        else:
            self.notify(f"Checking {command.path}…", timeout=3)

    def action_keys(self) -> None:
        self.push_screen(HelpScreen(self.key_list()))

    def key_list(self) -> list[tuple[str, str, str]]:
        """(screen, keys, action): the Tavern's keys, then each screen's (read from the
        bindings themselves)."""
        tavern = [b for b in self.BINDINGS if isinstance(b, Binding)]
        tavern += [
            Binding("ctrl+p", "", "Command palette"),
            Binding("ctrl+q", "", "Quit at once (DIO keeps training)"),
            Binding("ctrl+c", "", "Quit, as q (twice: at once, DIO keeps training)"),
        ]
        keys = [("Tavern", keys_shown(self, b), help_text(b)) for b in tavern]
        for title, screen in SCREEN_KEYS:
            for b in screen.BINDINGS:
                if isinstance(b, Binding):
                    keys.append((title, keys_shown(self, b), help_text(b)))
        return keys

    def action_leave(self) -> None:
        if self.state.link != "connected":
            self.exit("down")
            return
        self.push_screen(QuitScreen(self.state.hero_name), self._after_quit)

    def _after_quit(self, choice: str | None) -> None:
        if choice == "background":
            self.link.send(p.Goodbye())
            self.exit("background")
        elif choice == "stop":
            self.stopping = True
            self.state.engine_state = "stopping"
            self.tavern.show(self.state)
            self.tavern.flash(f"Saving loot before {self.state.hero_name} rests…")
            if not self.link.send(p.Stop()):
                self.exit("stopped")

    def action_restart_engine(self) -> None:
        if self.state.link == "connected":
            self.notify("The engine is running.", timeout=2)
            return
        if self.restart_engine_fn is None:
            self.notify("Cannot restart from here: run `realm play` again.", severity="error")
            return
        self.restart_engine_fn()
        self.state.link = "connecting"
        self.state.error = None
        self.tavern.show(self.state)
        self.link.reconnect()

    # ------------------------------------------------------------------ palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own "Keys" and "Quit" would sit beside ours ("Show keys", "Leave the game");
        # themes are the Market's (two free, the others for gold).
        own = ("Keys", "Quit", "Theme")
        yield from (c for c in super().get_system_commands(screen) if c.title not in own)
        yield SystemCommand(
            "Pause / resume training", "Space: DIO stops between steps", self.action_toggle_pause
        )
        yield SystemCommand("Save loot now", "s: write a checkpoint", self.action_save_loot)
        yield SystemCommand("Evaluate now", "e: run every skill's eval set", self.action_run_eval)
        yield SystemCommand("Open the Guild", "g: skill trees, gates, samples", self.action_guild)
        yield SystemCommand(
            "Open the Quest board", "b: queued, active, done and failed quests", self.action_quest_board
        )
        yield SystemCommand(
            "Open the Vault", "v: every loot, best by metric, pin, compare, rewind, export", self.action_vault
        )
        yield SystemCommand("Open the Oracle", "o: chat with DIO, live or any loot", self.action_oracle)
        yield SystemCommand("Show the task board", "t: evals and other work, with results", self.action_tasks)
        yield SystemCommand("Spar", "p: DIO's mistakes become a high-priority quest", self.action_spar)
        yield SystemCommand(
            "Show achievements", "a: unlocked and locked, and how to earn them", self.action_achievements
        )
        yield SystemCommand(
            "Show the campaign map",
            "c: phases, the current one, its gate; n starts one",
            self.action_campaign,
        )
        yield SystemCommand("Open the log book", "l: every event, filtered by kind", self.action_log_book)
        yield SystemCommand(
            "Show the stats", "i: lr, grad norm, tokens/s, each skill's eval chart", self.action_stats
        )
        yield SystemCommand(
            "Open the Armory (settings)", "m: change lr, skill mix, evals, vault…", self.action_armory
        )
        yield SystemCommand(
            "Open the Market", "$: spend gold on a title, a portrait, a theme", self.action_market
        )
        yield SystemCommand(
            "Add a quest file", "a on the board: validate and queue a .jsonl file", self.action_add_quest
        )
        yield SystemCommand("Show keys", "?: every key", self.action_keys)
        yield SystemCommand("Leave the game", "q: background or save and stop", self.action_leave)
        yield SystemCommand("Restart the engine", "r: from the last loot", self.action_restart_engine)
