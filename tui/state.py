"""What the UI knows about the game, folded from engine events. Pure Python, so the
folding is tested without a terminal."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from typing_extensions import assert_never

from engine.protocol import messages as p
from tui.messages import LinkEvent, LinkLost, LinkWaiting

CHART_POINTS = 600
LOG_LINES = 100
LOG_ROWS = 5000  # log book rows kept (events.jsonl holds them all)


TASK_WORDS = {
    "eval": "EVALUATING",
    "loot-eval": "EVALUATING LOOT",
    "compare": "COMPARING",
    "ask": "ANSWERING",
    "phase": "ENDING PHASE",
    "gate": "TESTING GATE",
}
TASKS_KEPT = 20  # finished tasks remembered for the Tasks screen
LOOK_KINDS = ("title", "portrait", "theme")


@dataclass
class GameState:
    link: str = "connecting"  # connecting | connected | lost
    engine_state: str = "starting"  # training | paused | stopping | stopped
    pause_requested: bool = False  # space pressed, Paused not yet seen
    hero: str = ""
    model: str = ""
    device: str = ""
    pid: int | None = None
    params: int = 0
    source: str = ""
    stats: p.HeroStats = field(default_factory=p.HeroStats)
    tokens_per_s: float = 0.0
    last_damage: float | None = None
    masked_fraction: float = 0.0
    train_losses: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=CHART_POINTS))
    val_losses: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=CHART_POINTS))
    loot: list[p.LootInfo] = field(default_factory=list)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    error: str | None = None
    error_detail: str = ""
    waited: float = 0.0
    skills: tuple[p.SkillInfo, ...] = ()
    quests: tuple[p.QuestInfo, ...] = ()
    gpu: p.GpuStats = field(default_factory=p.GpuStats)
    memory_plan: str = ""
    vault: p.VaultListed | None = None  # the latest full listing (kept-because, doomed, best)
    tasks: dict[int, p.TaskInfo] = field(default_factory=dict)  # the engine's task board, by id
    eval_every: int = 0  # steps between scheduled skill evals
    achievements: tuple[p.AchievementInfo, ...] = ()  # every one, locked or not
    campaign: p.CampaignInfo | None = None  # the campaign DIO follows
    config: dict[str, Any] = field(default_factory=dict)  # config.json as the engine last said
    lr: float | None = None  # the latest step's learning rate
    grad_norm: float | None = None
    lr_history: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=CHART_POINTS))
    grad_history: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=CHART_POINTS))
    skill_history: list[p.SkillPoint] = field(default_factory=list)  # each skill's evals, by step
    log_rows: deque[p.LogLine] = field(default_factory=lambda: deque(maxlen=LOG_ROWS))  # the log book
    shop: p.ShopInfo = field(default_factory=lambda: p.ShopInfo(purse=0))  # the Market
    looks: dict[str, str] = field(default_factory=dict)  # worn: title, portrait, theme → look

    @property
    def hero_name(self) -> str:
        """The hero as every screen names it: the save slot's name, DIO by default."""
        return (self.hero or "DIO").upper()

    def _shopped(self, shop: p.ShopInfo) -> None:
        self.shop = shop
        self.looks = {kind: shop.worn(kind) for kind in LOOK_KINDS}
        self.stats = replace(self.stats, gold=shop.purse)

    @property
    def bell(self) -> bool:
        """The player's setting game.bell (off unless turned on)."""
        return bool(self.config.get("game", {}).get("bell", False))

    @property
    def active_quest(self) -> p.QuestInfo | None:
        return next((q for q in self.quests if q.state == "active"), None)

    def _put_quest(self, info: p.QuestInfo) -> None:
        self.quests = tuple(info if q.name == info.name else q for q in self.quests)

    def _listed(self, event: p.QuestBoard | p.VaultListed) -> None:
        if isinstance(event, p.QuestBoard):
            self.quests = event.quests
        else:
            self.loot = list(event.loot)  # after pruning, pins, rewinds
            self.vault = event

    def _put_task(self, task: p.TaskInfo) -> None:
        self.tasks[task.id] = task
        finished = sorted(i for i, t in self.tasks.items() if t.state in ("done", "failed"))
        for old in finished[:-TASKS_KEPT]:
            del self.tasks[old]

    def _put_skill(self, info: p.SkillInfo) -> None:
        others = [s for s in self.skills if s.id != info.id]
        order = [s.id for s in self.skills]
        merged = [*others, info]
        merged.sort(key=lambda s: order.index(s.id) if s.id in order else len(order))
        self.skills = tuple(merged)

    @property
    def running_task(self) -> p.TaskInfo | None:
        return next((t for t in self.tasks.values() if t.state == "running"), None)

    @property
    def status_word(self) -> str:
        if self.link == "lost":
            return "ENGINE DOWN"
        if self.link == "connecting":
            return "WAKING UP"
        task = self.running_task
        if task is not None:  # training waits for it
            word = TASK_WORDS.get(task.kind, "WORKING")
            return f"{word} {task.done}/{task.total}" if task.total > 1 else word
        if self.engine_state == "paused":
            return "PAUSED"
        if self.pause_requested:
            return "PAUSING…"
        return self.engine_state.upper()

    @property
    def last_loot_step(self) -> int | None:
        line = [loot for loot in self.loot if not loot.set_aside]  # a rewind's set-aside loot are not "last"
        return max(line, key=lambda loot: loot.time).step if line else None

    def apply(self, event: LinkEvent) -> None:
        """Fold one event into the state: the link and the engine's life here, the run's
        progress in ``_progress``."""
        match event:
            case p.Snapshot():
                self._load(event)
            case p.Paused():
                self.engine_state = "paused"
                self.pause_requested = False
            case p.Resumed():
                self.engine_state = "training"
            case p.Stopped():
                self.engine_state = "stopped"
            case p.EngineFailed():
                self.error = event.error
                self.error_detail = event.traceback
            case p.HandshakeError():
                self.error = event.reason
            case LinkLost():
                self.link = "lost"
                self.pause_requested = False
                if self.engine_state != "stopped" and self.error is None:
                    self.error = event.reason
            case LinkWaiting():
                self.link = "connecting"
                self.waited = event.seconds
            case _:
                self._progress(event)

    def _load(self, event: p.Snapshot) -> None:
        self.link = "connected"
        self.error = None
        self.hero, self.model, self.device = event.hero, event.model, event.device
        self.pid, self.params, self.source = event.pid, event.params, event.source
        self.engine_state = event.state
        self.pause_requested = False
        self.stats = event.stats
        self.tokens_per_s = event.tokens_per_s
        self.masked_fraction = event.masked_fraction
        self.train_losses.clear()
        self.train_losses.extend(event.train_losses)
        self.val_losses.clear()
        self.val_losses.extend(event.val_losses)
        self.loot = list(event.loot)
        self.log.extend(event.log)
        self.skills = event.skills
        self.quests = event.quests
        self.gpu = event.gpu
        self.memory_plan = event.memory_plan
        self.tasks = {t.id: t for t in event.tasks}
        self.eval_every = event.eval_every
        self.achievements = event.achievements
        self.campaign = event.campaign
        self._configured(event.config_json)
        self.lr_history.clear()
        self.lr_history.extend(event.lr_history)
        self.grad_history.clear()
        self.grad_history.extend(event.grad_history)
        if event.lr_history:
            self.lr, self.grad_norm = event.lr_history[-1][1], event.grad_history[-1][1]
        self.skill_history = list(event.skill_history)
        if event.shop.wares:
            self._shopped(event.shop)

    def _configured(self, config_json: str) -> None:
        try:
            config = json.loads(config_json) if config_json else {}
        except ValueError:
            return
        if isinstance(config, dict):
            self.config = config

    def _progress(self, event: p.Event) -> None:
        match event:
            case p.StepCompleted():
                self._stepped(event)
            case p.GpuTelemetry() | p.CampaignUpdated() | p.AchievementUnlocked():
                self._replaced(event)
            case p.QuestBoard() | p.VaultListed():
                self._listed(event)
            case p.QuestCompleted():
                self._put_quest(event.quest)
                self.stats = replace(self.stats, gold=self.stats.gold + event.gold)
            case p.CheckpointSaved():
                self.loot.append(event.loot)
            case p.TaskUpdated():
                self._put_task(event.task)
            case p.EvalCompleted():
                self._evaluated(event)
            case p.LogLine() | p.LogRead() | p.ConfigReply():
                self._noted(event)
            case p.ShopReply():
                self._shopped(event.shop)
            case (
                p.LevelledUp()
                | p.SkillLevelledUp()
                | p.WatchdogIntervened()
                | p.QuestRejected()
                | p.QuestReply()
                | p.CampaignReply()
                | p.VaultReply()
                | p.SuiteReply()
                | p.LootCompared()
                | p.OracleToken()
                | p.OracleAnswered()
                | p.CommandRejected()
                | p.Snapshot()
                | p.Paused()
                | p.Resumed()
                | p.Stopped()
                | p.EngineFailed()
                | p.HandshakeError()
            ):
                pass  # moments and replies the app shows; the rest is folded in apply()
            case _:
                assert_never(event)

    def _stepped(self, event: p.StepCompleted) -> None:
        self.stats = event.stats
        self.masked_fraction = event.masked_fraction
        self.tokens_per_s = event.tokens_per_s
        self.last_damage = event.loss
        self.train_losses.append((event.step, event.smoothed_loss))
        self.lr_history.append((event.step, event.lr))
        self.lr = event.lr
        if math.isfinite(event.grad_norm):  # inf: an fp16 overflow, a skipped step with no norm
            self.grad_norm = event.grad_norm
            self.grad_history.append((event.step, event.grad_norm))
        if event.quest is not None:
            self._put_quest(event.quest)

    def _noted(self, event: p.LogLine | p.LogRead | p.ConfigReply) -> None:
        """The log book's rows, and the config after a change the engine made."""
        if isinstance(event, p.LogLine):
            self.log.append(event.text)
            self.log_rows.append(event)
        elif isinstance(event, p.LogRead):
            self.log_rows.clear()
            self.log_rows.extend(event.rows)
        elif event.ok and not event.dry_run:
            self._configured(event.config_json)

    def _replaced(self, event: p.GpuTelemetry | p.CampaignUpdated | p.AchievementUnlocked) -> None:
        """Events that replace one part of the state."""
        if isinstance(event, p.GpuTelemetry):
            self.gpu = event.gpu
        elif isinstance(event, p.CampaignUpdated):
            self.campaign = event.campaign
        else:
            won = event.achievement
            self.achievements = tuple(won if a.id == won.id else a for a in self.achievements)

    def _evaluated(self, event: p.EvalCompleted) -> None:
        if not self.val_losses or self.val_losses[-1][0] != event.step:
            self.val_losses.append((event.step, event.val_loss))
        if event.skill is not None:
            self._put_skill(event.skill)
            if event.accuracy is not None:
                point = p.SkillPoint(event.step, event.skill.id, event.level, event.accuracy)
                self.skill_history.append(point)
