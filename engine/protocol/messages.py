"""The messages on the wire between the game (tui) and the engine.

Commands are imperative (a client asks), events are past tense (the engine reports).
Everything here is a frozen, slotted, picklable dataclass, sent over a
``multiprocessing.connection`` (a Unix socket in the hero's save folder, or a
``Pipe()`` in tests). ``Command`` and ``Event`` are the unions a handler matches on
(ending in ``assert_never``, so mypy names a message nobody handles). This module must
stay importable without torch or textual.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, TypeAlias, get_args

from engine.protocol.config import MAX_REPLY_TOKENS, QUEST_CHECKS, QUEST_PRIORITIES

PROTOCOL_VERSION = 11

# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class HeroStats:
    """What the hero card shows. Derived by the engine from training state."""

    step: int = 0
    level: int = 0
    xp_per_level: int = 1000
    atk: float = 0.0  # 1 / smoothed train loss
    defense: float = 0.0  # 1 / validation loss
    acc: float | None = None  # latest eval accuracy, 0..1
    gold: int = 0
    train_loss: float | None = None  # smoothed
    val_loss: float | None = None
    tokens_seen: int = 0
    grade: str = ""  # the run grade, "B 84" (engine/game/grade.py); "" before the first
    seconds_trained: float = 0.0  # time in training steps, every session together
    steps_per_minute: float = 0.0  # the recent pace (0: not known yet)

    @property
    def xp_into_level(self) -> int:
        return self.step - self.level * self.xp_per_level


@dataclass(frozen=True, slots=True)
class SkillScore:
    """A loot's own eval on one skill (its weights, at the level the skill was then)."""

    skill: str
    level: int
    accuracy: float
    problems: int


@dataclass(frozen=True, slots=True)
class SkillPoint:
    """One scheduled eval of one skill: the stats screen's chart."""

    step: int
    skill: str
    level: int  # 0 where an old metrics row did not record it
    accuracy: float


# The log book's filters: what a row of events.jsonl is about.
LOG_KINDS: tuple[str, ...] = (
    "level",
    "loot",
    "quest",
    "eval",
    "campaign",
    "achievement",
    "watchdog",
    "crash",
    "run",
    "other",
)


@dataclass(frozen=True, slots=True)
class LootInfo:
    """One checkpoint as recorded in the ledger."""

    step: int
    name: str  # folder name under checkpoints/ (step-000200; step-000200-r1 once set aside)
    time: float
    reason: str  # "auto" | "manual" | "stop" | "quest" | "adopted"
    train_loss: float | None
    val_loss: float | None  # of its own weights; None: not evaluated
    lr: float
    source: str  # what was being trained
    size_bytes: int = 0
    pinned: bool = False
    kept_because: tuple[str, ...] = ()  # the retention rules that keep it
    skills: tuple[SkillScore, ...] = ()  # empty: not evaluated
    set_aside: bool = False  # a newer line's loot left by a rewind: never resumed from
    metrics: tuple[tuple[str, float], ...] = ()  # (suite, score 0-1) of each eval suite run on it

    @property
    def evaluated(self) -> bool:
        return bool(self.skills)

    def accuracy(self, skill: str) -> float | None:
        return next((s.accuracy for s in self.skills if s.skill == skill), None)


@dataclass(frozen=True, slots=True)
class SkillInfo:
    """One skill's tree as the Guild shows it."""

    id: str
    name: str
    icon: str
    colour: str
    level: int
    max_level: int
    threshold: float
    gate_window: int
    evals: tuple[float, ...]  # accuracies at the current level, oldest first
    mastered: tuple[int, ...]  # levels passed
    sample_prompt: str = ""
    sample_answer: str = ""  # DIO's latest answer to it
    sample_correct: bool = False

    @property
    def gate_passes(self) -> int:
        return sum(1 for a in self.evals[-self.gate_window :] if a >= self.threshold)


@dataclass(frozen=True, slots=True)
class AwaySummary:
    """What happened between the last UI leaving and this one attaching."""

    seconds: float
    steps_gained: int
    levels_gained: int
    loot_steps: tuple[int, ...]
    restarted: bool  # the engine was (re)started while nobody watched
    skill_levels: tuple[str, ...] = ()  # skill levels reached meanwhile: "BIN L3"
    quests_done: int = 0
    gold_gained: int = 0
    evals: int = 0  # eval rounds
    crashes: int = 0  # engines that died without stopping (and were resumed)
    interventions: int = 0  # watchdog rollbacks and pauses
    phases: tuple[str, ...] = ()  # campaign phases finished meanwhile: "general (600 steps)"
    grade: str = ""  # the run grade now ("B 84"), when there is one


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    """One phase of a campaign, as the campaign map shows it."""

    name: str
    state: str  # "done" | "current" | "next"
    skills: str  # "BIN ×1 · SY ×0.5"
    length: str  # "600 steps", "until SY L3 (at most 3,000 steps)", "2 epochs of 1 quest"
    schedule: str  # "lr 2e-03 cosine, warmup 50"
    rehearsal: float  # share of examples from earlier phases
    quests: int = 0
    start_step: int | None = None
    end_step: int | None = None
    progress: float | None = None  # 0–1 of its length, when that is known
    gate: str = ""  # where the gate stands: "SY L2 (needs L3) · bin20 72% (needs 80%)"
    loot: str = ""  # the loot that ended it
    result: str = ""  # how it ended and the skills' scores then


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    name: str
    phases: tuple[PhaseInfo, ...]
    current: int  # index of the phase being trained (the last one once finished)
    finished: bool = False
    description: str = ""
    when_done: str = "continue"


@dataclass(frozen=True, slots=True)
class AchievementInfo:
    id: str
    title: str
    how: str  # how it is earned
    step: int | None = None  # the step it was unlocked at; None: still locked

    @property
    def unlocked(self) -> bool:
        return self.step is not None


@dataclass(frozen=True, slots=True)
class WareInfo:
    """Something gold buys in the Market (engine/game/shop.py): looks only, never training."""

    id: str
    kind: str  # title | portrait | theme
    name: str
    price: int
    look: str  # what the UI shows: a title's words, a portrait's id, a theme's name
    owned: bool = False
    worn: bool = False


@dataclass(frozen=True, slots=True)
class ShopInfo:
    purse: int  # gold to spend: earned (quests, levels) minus spent
    wares: tuple[WareInfo, ...] = ()

    def worn(self, kind: str) -> str:
        """The look of the ware of this kind in use ("" when none)."""
        return next((w.look for w in self.wares if w.kind == kind and w.worn), "")


@dataclass(frozen=True, slots=True)
class GpuStats:
    """The gear panel. Every metric may be None (not offered by this GPU or container)."""

    available: bool = False
    reason: str = "no GPU"  # why it is not available
    name: str = ""
    utilization: float | None = None  # percent
    memory_used: int | None = None  # bytes
    memory_total: int | None = None
    temperature: float | None = None  # °C
    power_watts: float | None = None
    power_limit_watts: float | None = None


@dataclass(frozen=True, slots=True)
class QuestInfo:
    """One quest (a training file) as the board shows it."""

    name: str  # the file name, unique in the hero's quest folders
    state: str  # "queued" | "active" | "done" | "failed"
    priority: str  # "high" | "normal" | "low"
    rows: int = 0  # rows that will train (after checks)
    epochs: int = 1
    seen: int = 0  # rows trained so far, all epochs together
    checks: str = "standard"
    added_at: float = 0.0
    finished_at: float | None = None
    reason: str = ""  # why a failed quest failed (names the line)
    notices: tuple[str, ...] = ()  # conversions, dropped rows
    loss_before: float | None = None
    loss_after: float | None = None
    tokens: int = 0
    digest: str = ""  # sha256 of the file: the same content is not a new quest
    finished_step: int | None = None  # the step it was done at
    outcome: str = ""  # after a sparring quest: "fixed 5 of 8" (its mistakes re-tested)

    @property
    def total(self) -> int:
        return self.rows * self.epochs

    @property
    def epoch(self) -> int:
        """The epoch in progress, counted from 1."""
        if not self.rows:
            return 1
        return min(self.epochs, self.seen // self.rows + 1)

    @property
    def fraction(self) -> float:
        return self.seen / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One job on the engine's task board (an eval, a loot eval, a compare, an answer)."""

    id: int
    kind: str  # "eval" | "loot-eval" | "compare" | "ask"
    label: str
    state: str  # "queued" | "running" | "done" | "failed"
    done: int  # units of work done (problems, replies)
    total: int  # 0: not known yet
    result: str  # one line once finished ("BIN L2: 86% (2 of 3 >= 80%)")
    added_at: float
    started_at: float | None = None
    finished_at: float | None = None


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of every connection; answered by a Snapshot."""

    protocol_version: int = PROTOCOL_VERSION
    client: str = "tui"
    watcher: bool = True  # False for `realm quest`: it does not end anyone's "away"


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class SaveNow:
    pass


@dataclass(frozen=True, slots=True)
class RunEval:
    """Evaluate every skill now (answered by EvalCompleted events)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Save loot, then end the engine process."""


@dataclass(frozen=True, slots=True)
class Goodbye:
    """The UI is leaving on purpose (DIO keeps training); marks the start of 'away'."""


@dataclass(frozen=True, slots=True)
class AddQuest:
    """Validate a file and copy it into the queue (the engine reads ``path``)."""

    path: str  # absolute
    priority: str | None = None  # None: the file's header, else normal
    epochs: int | None = None  # None: the file's header or 1
    checks: str | None = None  # None: the file's header or the hero's default


@dataclass(frozen=True, slots=True)
class CancelQuest:
    """Take a queued or active quest off the board (its file moves to failed/)."""

    name: str


@dataclass(frozen=True, slots=True)
class RetryQuest:
    """Validate a failed quest's file again (after the user fixed it) and queue it."""

    name: str


@dataclass(frozen=True, slots=True)
class SetQuestPriority:
    name: str
    priority: str


QuestCommand: TypeAlias = AddQuest | CancelQuest | RetryQuest | SetQuestPriority


@dataclass(frozen=True, slots=True)
class ListLoot:
    """Answered by VaultListed: every loot, why it is kept, what the policy would delete."""


@dataclass(frozen=True, slots=True)
class PinLoot:
    name: str
    pinned: bool = True


@dataclass(frozen=True, slots=True)
class DeleteLoot:
    """Delete one loot (never the one training resumes from)."""

    name: str


@dataclass(frozen=True, slots=True)
class PruneLoot:
    """Apply the retention policy now (it also runs after every loot)."""


@dataclass(frozen=True, slots=True)
class RewindTo:
    """Continue training from an older loot; newer loot are set aside, not deleted."""

    name: str


@dataclass(frozen=True, slots=True)
class EvalLoot:
    """Evaluate a loot's own weights on every skill (answered by VaultReply, and the
    loot's row gains its scores)."""

    name: str


@dataclass(frozen=True, slots=True)
class CompareLoot:
    """Metrics side by side and which eval problems each gets right (LootCompared)."""

    a: str
    b: str


VaultCommand: TypeAlias = ListLoot | PinLoot | DeleteLoot | PruneLoot | RewindTo | EvalLoot | CompareLoot


@dataclass(frozen=True, slots=True)
class AddSuite:
    """Check a suite file (the engine reads ``path``) and copy it into suites/."""

    path: str


@dataclass(frozen=True, slots=True)
class ListSuites:
    """Every suite with its questions and latest scores (SuiteReply, data: a list)."""


@dataclass(frozen=True, slots=True)
class RunSuite:
    """Run a suite on a loot (None: the live weights); the result comes when done."""

    suite: str
    loot: str | None = None


@dataclass(frozen=True, slots=True)
class CompareSuite:
    """Per-question diff of two stored runs and a paired sign test (SuiteReply)."""

    suite: str
    a: str
    b: str


SuiteCommand: TypeAlias = AddSuite | ListSuites | RunSuite | CompareSuite


@dataclass(frozen=True, slots=True)
class Spar:
    """DIO answers problems of a skill (None: each skill in turn) at its current level;
    its mistakes become a high-priority quest. Answered by a QuestReply when done."""

    skill: str | None = None
    problems: int = 0  # 0: the hero's sparring setting


@dataclass(frozen=True, slots=True)
class Ask:
    """A question for the Oracle: ``turns`` alternate user, assistant, …, user. ``loot``
    None asks the live weights. Answered by OracleToken events, then OracleAnswered."""

    request_id: str
    turns: tuple[str, ...]
    loot: str | None = None
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 0  # 0: the hero's oracle default
    seed: int = 0  # for sampling: the same seed gives the same reply


@dataclass(frozen=True, slots=True)
class StartCampaign:
    """Check a campaign file (the engine reads ``path`` and the quest files it names) and
    follow it from this step; answered by a CampaignReply."""

    path: str  # absolute


@dataclass(frozen=True, slots=True)
class EndCampaign:
    """Leave the campaign: DIO goes back to the hero's own skills and schedule."""


@dataclass(frozen=True, slots=True)
class ReadLog:
    """The log book: the newest ``limit`` rows of events.jsonl; answered by a LogRead."""

    limit: int = 2000


@dataclass(frozen=True, slots=True)
class SetConfig:
    """Change one setting of the hero's config ("train.lr", "game.skills.sy", "game.bell"),
    validated like the file; answered by a ConfigReply saying when it applies."""

    key: str
    value: str  # as typed: "3e-4", "true", "cosine"
    dry_run: bool = False  # check it and estimate its memory; change nothing


@dataclass(frozen=True, slots=True)
class Buy:
    """Spend gold on a ware in the Market; it is worn at once. Answered by ShopReply."""

    ware: str


@dataclass(frozen=True, slots=True)
class Wear:
    """Put on a ware already owned (a free one too). Answered by ShopReply."""

    ware: str


Command: TypeAlias = (
    Hello
    | Pause
    | Resume
    | SaveNow
    | RunEval
    | Stop
    | Goodbye
    | QuestCommand
    | VaultCommand
    | SuiteCommand
    | Spar
    | Ask
    | StartCampaign
    | EndCampaign
    | ReadLog
    | SetConfig
    | Buy
    | Wear
)
COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Command)}


MAX_TEXT = 32_768  # a name, a path or a chat turn in a command
MAX_TURNS = 64
# Field values a command may carry beyond its type (None is allowed where the type says).
CHOICES: dict[str, tuple[str, ...]] = {"priority": QUEST_PRIORITIES, "checks": QUEST_CHECKS}
RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 1000),
    "temperature": (0.0, 2.0),
    "top_p": (0.01, 1.0),
    "max_new_tokens": (0, MAX_REPLY_TOKENS),
    "seed": (0, 2**31 - 1),
    "problems": (0, 4096),
    "limit": (1, 100_000),
}


def command_problem(command: object) -> str | None:
    """None when ``command`` is a well-formed command; otherwise what is wrong with it.
    Unpickling does not run a dataclass's __init__, so the engine checks every command
    it receives here: its class, each field's type, and the values a field allows."""
    name = type(command).__name__
    if COMMAND_TYPES.get(name) is not type(command):
        return f"{name} is not a command"
    cls: Any = type(command)
    hints = _field_types(cls)
    for f in fields(cls):
        try:
            value = getattr(command, f.name)
        except AttributeError:
            return f"{cls.__name__}.{f.name} is missing"
        if not _fits(value, hints[f.name]):
            return f"{cls.__name__}.{f.name} cannot be {type(value).__name__} {_short(value)}"
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return f"{cls.__name__}.{f.name} is {len(value):,} characters long"
        allowed = CHOICES.get(f.name)
        if allowed is not None and value is not None and value not in allowed:
            return f"{cls.__name__}.{f.name} must be one of {', '.join(allowed)}, not {_short(value)}"
        bounds = RANGES.get(f.name)
        if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
            return f"{cls.__name__}.{f.name} must be {bounds[0]:g}..{bounds[1]:g}, not {_short(value)}"
    if isinstance(command, Ask):
        if len(command.turns) % 2 == 0 or len(command.turns) > MAX_TURNS:
            return f"Ask.turns must be user, assistant, …, user (1..{MAX_TURNS - 1} turns)"
        if any(len(t) > MAX_TEXT for t in command.turns):
            return f"Ask.turns: a turn is longer than {MAX_TEXT:,} characters"
    return None


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fits(value: object, hint: Any) -> bool:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        kind = type(None) if kind is None else kind
        if typing.get_origin(kind) is tuple:  # tuple[str, ...]
            item = typing.get_args(kind)[0]
            if isinstance(value, tuple) and all(_fits(v, item) for v in value):
                return True
            continue
        if kind in (int, float) and isinstance(value, bool):
            continue
        if isinstance(value, kind) or (kind is float and isinstance(value, int)):
            return True
    return False


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def command_to_dict(command: Command) -> dict[str, Any]:
    """A command as plain JSON-able data: {"type": "AddQuest", "path": …}."""
    return {"type": type(command).__name__, **{f.name: getattr(command, f.name) for f in fields(command)}}


def command_from_dict(data: dict[str, Any]) -> Command:
    """The command ``command_to_dict`` made; ValueError for anything else."""
    cls = COMMAND_TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"not a command: {data.get('type')!r}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "type"}
    try:
        command: Command = cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {cls.__name__}: {exc}") from None
    problem = command_problem(command)
    if problem is not None:
        raise ValueError(problem)
    return command


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole game state, sent in answer to Hello so a late UI shows everything."""

    protocol_version: int
    hero: str
    model: str
    device: str
    state: str  # "training" | "paused" | "stopping"
    pid: int
    stats: HeroStats
    tokens_per_s: float
    source: str  # what DIO is training on now
    train_losses: tuple[tuple[int, float], ...]  # (step, smoothed loss), recent history
    val_losses: tuple[tuple[int, float], ...]
    loot: tuple[LootInfo, ...]  # newest last
    log: tuple[str, ...]  # recent log lines, newest last
    masked_fraction: float  # share of tokens with no loss (prompt, padding)
    params: int
    skills: tuple[SkillInfo, ...] = ()
    away: AwaySummary | None = None
    quests: tuple[QuestInfo, ...] = ()
    gpu: GpuStats = GpuStats()
    memory_plan: str = ""  # the VRAM (or RAM) estimate made before training started
    warnings: tuple[str, ...] = ()  # what the engine had to repair or report when it started
    tasks: tuple[TaskInfo, ...] = ()  # the task board: recent finished, then queued and running
    eval_every: int = 0  # steps between scheduled skill evals (the gate's ETA)
    achievements: tuple[AchievementInfo, ...] = ()  # every achievement, locked or not
    campaign: CampaignInfo | None = None  # the campaign DIO follows, if any
    config_json: str = ""  # the hero's config.json as the engine runs it (the Armory, the stats)
    skill_history: tuple[SkillPoint, ...] = ()  # every skill eval still in metrics.jsonl
    lr_history: tuple[tuple[int, float], ...] = ()  # (step, learning rate), recent
    grad_history: tuple[tuple[int, float], ...] = ()  # (step, gradient norm), recent
    shop: ShopInfo = ShopInfo(purse=0)  # the Market: wares, owned and worn, the purse


@dataclass(frozen=True, slots=True)
class StepCompleted:
    """Throttled (<= 10/s): ``steps`` optimizer steps happened since the last one."""

    step: int
    steps: int
    loss: float  # raw loss of the latest step: the damage dealt to DIO
    smoothed_loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    stats: HeroStats
    masked_fraction: float = 0.0  # share of the step's tokens with no loss
    quest: QuestInfo | None = None  # the active quest's live progress


@dataclass(frozen=True, slots=True)
class Paused:
    step: int


@dataclass(frozen=True, slots=True)
class Resumed:
    step: int


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    loot: LootInfo


@dataclass(frozen=True, slots=True)
class LevelledUp:
    level: int
    step: int


@dataclass(frozen=True, slots=True)
class EvalCompleted:
    step: int
    val_loss: float
    accuracy: float | None
    problems: int
    skill: SkillInfo | None = None  # the skill's tree after this eval
    level: int = 0  # the level this eval was at (before any level-up it caused)


@dataclass(frozen=True, slots=True)
class SkillLevelledUp:
    skill: str
    name: str
    level: int  # the new level
    step: int


@dataclass(frozen=True, slots=True)
class WatchdogIntervened:
    """The watchdog held a step back, rolled back to a loot, or paused DIO."""

    step: int
    kind: str  # skip | rollback | pause
    reason: str
    lr_scale: float  # the learning rate's scale from now on
    loot: str = ""  # a rollback's target


@dataclass(frozen=True, slots=True)
class ShopReply:
    """The answer to Buy or Wear: what happened, and the Market as it is now."""

    ok: bool
    message: str
    shop: ShopInfo


@dataclass(frozen=True, slots=True)
class AchievementUnlocked:
    """A milestone reached (engine/game/achievements.py); it changes nothing in training."""

    achievement: AchievementInfo


@dataclass(frozen=True, slots=True)
class CampaignUpdated:
    """The campaign changed: started, a phase ended, finished, left (None)."""

    campaign: CampaignInfo | None
    news: str = ""  # "Phase general complete (600 steps): BIN 90% · SY 41%"


@dataclass(frozen=True, slots=True)
class CampaignReply:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class LogLine:
    text: str
    level: str = "info"  # "info" | "warning" | "error"
    kind: str = "other"  # one of LOG_KINDS: the log book's filters
    step: int = 0
    time: float = 0.0


@dataclass(frozen=True, slots=True)
class LogRead:
    """The log book's rows (events.jsonl), oldest first; ``total`` counts every row."""

    rows: tuple[LogLine, ...]
    total: int


@dataclass(frozen=True, slots=True)
class ConfigReply:
    """The answer to SetConfig: ``ok``, what happened, and the whole config after it.
    ``applies`` is "now" (from the next step) or "restart" (saved; the next start uses it)."""

    ok: bool
    message: str
    config_json: str = ""
    applies: str = ""
    dry_run: bool = False  # an answer to a check: nothing was changed


@dataclass(frozen=True, slots=True)
class CommandRejected:
    command: str
    reason: str


@dataclass(frozen=True, slots=True)
class EngineFailed:
    """Sent, when possible, just before the engine dies of an error."""

    error: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class Stopped:
    """The engine saved and is about to exit."""

    step: int
    last_loot_step: int | None = None
    reason: str = "stop"


@dataclass(frozen=True, slots=True)
class GpuTelemetry:
    """Polled <= 2 Hz while a GPU is present (coalesced like step events)."""

    gpu: GpuStats


@dataclass(frozen=True, slots=True)
class QuestBoard:
    """The whole board, after anything on it changed (a handful of rows)."""

    quests: tuple[QuestInfo, ...]


@dataclass(frozen=True, slots=True)
class QuestRejected:
    """A file was refused (intake, checks, retry); ``reason`` names the line."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class QuestCompleted:
    quest: QuestInfo
    gold: int  # gold paid for it
    loot: str | None = None  # the loot taken right after it


@dataclass(frozen=True, slots=True)
class QuestReply:
    """The answer to one quest command, sent to the client that asked."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class TaskUpdated:
    """A task was queued, advanced one slice, or finished."""

    task: TaskInfo


@dataclass(frozen=True, slots=True)
class VaultListed:
    """Every live loot (oldest first) with why it is kept, and what the policy would
    delete now, with why. Sent for ListLoot and to every UI after the vault changed."""

    loot: tuple[LootInfo, ...]
    doomed: tuple[tuple[str, str], ...] = ()  # (name, why it would go)
    kept_bytes: int = 0
    budget_bytes: int = 0
    over_budget: bool = False  # pins, bests and the resume point alone are over it
    resume_from: str | None = None
    best: tuple[tuple[str, str], ...] = ()  # (metric, the best loot's name)


def vault_listed_from_dict(data: dict[str, Any]) -> VaultListed:
    """The VaultListed that ``dataclasses.asdict`` turned into JSON (the offline path)."""
    loot = tuple(
        LootInfo(
            **{
                **row,
                "kept_because": tuple(row.get("kept_because", ())),
                "skills": tuple(SkillScore(**s) for s in row.get("skills", ())),
                "metrics": tuple((str(m[0]), float(m[1])) for m in row.get("metrics", ())),
            }
        )
        for row in data.get("loot", ())
    )
    return VaultListed(
        loot=loot,
        doomed=tuple((str(d[0]), str(d[1])) for d in data.get("doomed", ())),
        kept_bytes=data.get("kept_bytes", 0),
        budget_bytes=data.get("budget_bytes", 0),
        over_budget=data.get("over_budget", False),
        resume_from=data.get("resume_from"),
        best=tuple((str(b[0]), str(b[1])) for b in data.get("best", ())),
    )


@dataclass(frozen=True, slots=True)
class VaultReply:
    """The answer to one vault command, sent to the client that asked."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class SuiteReply:
    """The answer to a suite command. ``data`` is JSON text: the suite list, a run's
    result (score, per question, by category and difficulty) or a comparison."""

    ok: bool
    message: str
    data: str = ""


@dataclass(frozen=True, slots=True)
class ProblemDiff:
    skill: str
    level: int
    prompt: str
    a_right: bool
    b_right: bool
    expected: str = ""  # the right answer
    a_answer: str = ""  # what each loot answered: how it went wrong, not only that it did
    b_answer: str = ""


@dataclass(frozen=True, slots=True)
class LootCompared:
    a: str
    b: str
    metrics: tuple[tuple[str, float | None, float | None], ...]  # (metric, a's, b's)
    problems: tuple[ProblemDiff, ...]


@dataclass(frozen=True, slots=True)
class OracleToken:
    """A piece of the Oracle's reply as it is generated (to the client that asked)."""

    request_id: str
    text: str


@dataclass(frozen=True, slots=True)
class OracleAnswered:
    """The whole reply, and exactly which weights produced it."""

    request_id: str
    loot: str  # a loot's name, or "live"
    step: int
    weights_hash: str  # a short hash of the weights that generated the reply
    text: str
    new_tokens: int
    seconds: float
    first_token_s: float | None
    placement: str  # "live" | "beside" | "swap"


@dataclass(frozen=True, slots=True)
class HandshakeError:
    """The engine's answer to a Hello of another protocol version."""

    reason: str
    engine_version: int = PROTOCOL_VERSION


Event: TypeAlias = (
    Snapshot
    | HandshakeError
    | StepCompleted
    | Paused
    | Resumed
    | CheckpointSaved
    | LevelledUp
    | EvalCompleted
    | SkillLevelledUp
    | WatchdogIntervened
    | AchievementUnlocked
    | ShopReply
    | CampaignUpdated
    | CampaignReply
    | LogLine
    | LogRead
    | ConfigReply
    | CommandRejected
    | EngineFailed
    | Stopped
    | GpuTelemetry
    | QuestBoard
    | QuestRejected
    | QuestCompleted
    | QuestReply
    | TaskUpdated
    | VaultListed
    | VaultReply
    | SuiteReply
    | LootCompared
    | OracleToken
    | OracleAnswered
)
