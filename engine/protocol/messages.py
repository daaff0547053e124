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

from engine.protocol.config import QUEST_CHECKS, QUEST_PRIORITIES

PROTOCOL_VERSION = 3

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

    @property
    def xp_into_level(self) -> int:
        return self.step - self.level * self.xp_per_level


@dataclass(frozen=True, slots=True)
class LootInfo:
    """One checkpoint as recorded in the ledger."""

    step: int
    name: str  # folder name under checkpoints/
    time: float
    reason: str  # "auto" | "manual" | "stop"
    train_loss: float | None
    val_loss: float | None
    lr: float
    source: str  # what was being trained


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
Command: TypeAlias = Hello | Pause | Resume | SaveNow | RunEval | Stop | Goodbye | QuestCommand
COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Command)}


MAX_TEXT = 4096  # a name or a path in a command
# Field values a command may carry beyond its type (None is allowed where the type says).
CHOICES: dict[str, tuple[str, ...]] = {"priority": QUEST_PRIORITIES, "checks": QUEST_CHECKS}


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
    epochs = getattr(command, "epochs", None)
    if epochs is not None and not 1 <= epochs <= 1000:
        return f"{cls.__name__}.epochs must be 1..1000, not {epochs}"
    return None


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fits(value: object, hint: Any) -> bool:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        kind = type(None) if kind is None else kind
        if kind is int and isinstance(value, bool):
            continue
        if isinstance(value, kind):
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
    try:
        command: Command = cls(**{k: v for k, v in data.items() if k != "type"})
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


@dataclass(frozen=True, slots=True)
class SkillLevelledUp:
    skill: str
    name: str
    level: int  # the new level
    step: int


@dataclass(frozen=True, slots=True)
class LogLine:
    text: str
    level: str = "info"  # "info" | "warning" | "error"


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
    | LogLine
    | CommandRejected
    | EngineFailed
    | Stopped
    | GpuTelemetry
    | QuestBoard
    | QuestRejected
    | QuestCompleted
    | QuestReply
)
