"""A hero's settings: small frozen dataclasses, validated, saved in the hero's folder
and with every checkpoint.

Each field carries its docstring (the string right below it, as litgpt's ``args.py``
does); ``field_help`` reads them, so a command-line flag derived from a field
(``add_override_flags``) explains itself from the one place the setting is declared.
The choices (modes, priorities, checks…) are declared here once and imported by both
sides. Pure Python: the game's CLI and the engine both import it.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import textwrap
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from engine.protocol.model_folder import shown_name


class StartRefused(ValueError):
    """What the engine was given cannot run (a setting, the model folder): it stops at start
    with one line saying what to change, and `realm status` says so, not "it crashed"."""


class SettingRefused(StartRefused):
    """A setting this machine or model cannot run (bf16 or fp16 that would be emulated, rows
    too short for a skill)."""


MODES = ("full", "lora", "qlora")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The benches time every contender under the same autocast; fp16's loss scaling is ours alone.
BENCH_PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("cosine", "linear", "constant")
CHECKPOINTING = ("auto", "on", "off")
QUEST_PRIORITIES = ("high", "normal", "low")
QUEST_CHECKS = ("standard", "deep")
ORACLE_PLACEMENTS = ("auto", "beside", "swap")
MAX_REPLY_TOKENS = 4096  # the longest reply an Ask (messages.py), `realm serve` or a setting may ask for


@dataclass(frozen=True)
class TrainConfig:
    """How DIO trains: the batch, the optimizer and its schedule."""

    seed: int = 1234
    """Seed of the data stream, the model init and the quest shuffles."""
    micro_batch: int = 0
    """Packed rows per forward pass; 0 = about 2,048 tokens a pass (quick steps on a CPU)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    seq_len: int = 0
    """Tokens per packed row; 0 = sized to the longest example of every skill level (no
    example is ever cut). A length set by hand stops each skill at its last level that fits."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """The cosine ends at lr × min_lr_ratio and stays there."""
    warmup_steps: int = 50
    """Steps of linear warmup."""
    decay_steps: int = 20_000
    """Length of the decay; an idle game trains on past it."""
    schedule: str = "cosine"
    """cosine | linear | constant: the shape after warmup (to lr × min_lr_ratio over decay_steps)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip (0: off)."""
    precision: str = "auto"
    """auto | fp32 | bf16 | fp16. auto: bf16 autocast where it runs at full speed (a GPU
    with bf16 units, a CPU with AVX512_BF16 or AMX), else fp32. fp16: with loss scaling,
    for GPUs without bf16 (T4, V100)."""
    threads: int = 0
    """torch CPU threads; 0 lets torch decide."""
    gradient_checkpointing: str = "auto"
    """auto | on | off (auto: on when the memory estimate would not fit the GPU)."""
    compile: bool = False
    """torch.compile the model body for training steps (evals and the Oracle stay eager): ~12%
    faster steps on a 2-core CPU after a first compile of about a minute (docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        _positive(self, "grad_accum", "decay_steps")
        if self.micro_batch < 0 or self.seq_len < 0:
            raise ValueError("micro_batch and seq_len must be >= 0 (0 = automatic)")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, weight_decay and grad_clip must be >= 0")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        _choice(self, "precision", PRECISIONS)
        _choice(self, "gradient_checkpointing", CHECKPOINTING)
        _choice(self, "schedule", SCHEDULES)


@dataclass(frozen=True)
class GameConfig:
    """How training becomes a game: cadence of loot, evals, levels, quests."""

    xp_per_level: int = 1000
    """Steps per hero level."""
    checkpoint_every: int = 200
    """Steps between automatic loot (a multiple of eval_every: such loot comes evaluated)."""
    eval_every: int = 100
    """Steps between evals (validation loss and every skill's eval set)."""
    eval_problems: int = 0
    """Problems per skill eval; 0 = the skill YAML's eval_size."""
    val_examples: int = 64
    """Held-out examples for the validation loss."""
    skills: dict[str, float] = field(default_factory=lambda: {"bin": 1.0, "sy": 0.3})
    """Skill id -> weight in the training mix."""
    rehearsal: float = 0.2
    """Share of training on skill levels below the current one."""
    max_steps: int = 0
    """Save and stop after this many steps; 0 = train forever."""
    quest_share: float = 0.8
    """While a quest is active: its share of examples (the rest rehearses skills)."""
    quest_checks: str = "standard"
    """standard | deep (deep also drops answers leaked in their prompt): the default for quests."""
    bell: bool = False
    """Ring the terminal bell at level-ups, skill-ups, finished quests and watchdog alarms
    (the game only; off by default)."""

    def __post_init__(self) -> None:
        _positive(self, "xp_per_level", "checkpoint_every", "eval_every", "val_examples")
        if self.eval_problems < 0:
            raise ValueError("eval_problems must be >= 0")
        if not self.skills or any(w <= 0 for w in self.skills.values()):
            raise ValueError("skills must name at least one skill, each with a weight > 0")
        if not 0 <= self.rehearsal < 1:
            raise ValueError("rehearsal must be in [0, 1)")
        if self.max_steps < 0:
            raise ValueError("max_steps must be >= 0")
        if not 0 < self.quest_share <= 1:
            raise ValueError("quest_share must be in (0, 1]")
        _choice(self, "quest_checks", QUEST_CHECKS)


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters (modes lora and qlora)."""

    rank: int = 16
    """Rank of each adapter."""
    alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / rank)."""
    dropout: float = 0.05
    """Dropout on the adapters' input."""
    targets: str = "all-linear"
    """all-linear (every linear layer of the blocks; peft leaves the output layer out), or
    a comma-separated list of module names."""

    def __post_init__(self) -> None:
        _positive(self, "rank", "alpha")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora dropout must be in [0, 1), got {self.dropout}")
        if not self.targets.strip():
            raise ValueError("lora targets must name modules or be all-linear")

    @property
    def target_modules(self) -> str | list[str]:
        if self.targets == "all-linear":
            return "all-linear"
        return [t.strip() for t in self.targets.split(",") if t.strip()]


@dataclass(frozen=True)
class VaultConfig:
    """Which loot the vault keeps (the retention policy). A loot is kept when any rule
    keeps it; the rest is deleted, each deletion logged with its reason."""

    keep_last: int = 5
    """The newest loot kept whatever their reason (auto, save, quest, stop)."""
    keep_best: bool = True
    """Keep the best loot by validation loss and by each skill (level, then accuracy)."""
    disk_budget_gb: float = 0.0
    """Most the vault may use; over it, the oldest loot no other rule protects goes first
    (the newest kept loot included). 0 = auto: a tenth of the disk the save is on."""

    def __post_init__(self) -> None:
        _positive(self, "keep_last")
        if self.disk_budget_gb < 0:
            raise ValueError(f"disk_budget_gb must be >= 0, got {self.disk_budget_gb}")


@dataclass(frozen=True)
class EvalsConfig:
    """The user's eval suites (saves/HERO/suites/): when they run by themselves."""

    at_loot: bool = True
    """Run every suite on each automatic loot (its score becomes a Vault metric)."""
    every_steps: int = 0
    """Also run every suite on the live weights every N steps; 0 = never."""
    max_new_tokens: int = 128
    """Answer budget for a question that is not a skill problem."""

    def __post_init__(self) -> None:
        _positive(self, "max_new_tokens")
        if self.every_steps < 0:
            raise ValueError(f"every_steps must be >= 0, got {self.every_steps}")


@dataclass(frozen=True)
class TasksConfig:
    """The task board: work besides training, run between steps."""

    gpu_idle_only: bool = False
    """On a GPU box: suite runs and sparring re-tests wait until they would not slow
    training: while DIO is paused and NVML shows the GPU idle (no other job on it).
    Skill evals always run on schedule (the curriculum waits on them). No effect
    without NVML."""
    gpu_idle_percent: float = 10.0
    """Below this GPU utilisation (NVML, %) the GPU counts as idle."""
    max_wait_steps: int = 2000
    """A held task runs anyway (between steps) after waiting this many steps."""

    def __post_init__(self) -> None:
        _positive(self, "max_wait_steps")
        if not 0 < self.gpu_idle_percent <= 100:
            raise ValueError(f"gpu_idle_percent must be in (0, 100], got {self.gpu_idle_percent}")


@dataclass(frozen=True)
class SparringConfig:
    """Sparring (p): DIO's mistakes become a high-priority quest."""

    problems: int = 32
    """Problems DIO answers per round."""
    max_age_steps: int = 2000
    """A sparring quest still queued this many steps after its mistakes is retired
    (it describes an older DIO)."""

    def __post_init__(self) -> None:
        _positive(self, "problems", "max_age_steps")


@dataclass(frozen=True)
class WatchdogConfig:
    """The run's guard, every step: skip spikes, roll back from NaN or repeated spikes.

    The spike rule is OLMo-core's: a step whose loss (and, if turned on, gradient norm) is
    more than ``spike_sigmas`` standard deviations above the mean of the last ``window``
    steps gets no optimizer update."""

    enabled: bool = True
    """Judge every step (off: train through whatever happens)."""
    window: int = 128
    """Steps of history a spike is judged against (OLMo-core: 128)."""
    spike_sigmas: float = 6.0
    """Skip a step whose loss is this many σ above the window's mean (OLMo-core: 6)."""
    grad_norm_sigmas: float = 0.0
    """The same test on the gradient norm; 0 = off. Off by default: on the hatchling the
    norm tripled for a few steps while SY began to learn (loss normal), and a 6σ test
    paused that healthy run (docs/benchmarks.md)."""
    min_history: int = 64
    """Steps of history before any spike is judged (after a start, a level-up or a
    rollback; OLMo-core: half the window)."""
    spikes_to_rollback: int = 3
    """Skipped spikes within the window that roll back (Axolotl stops after 3 steps over its threshold)."""
    lr_factor: float = 0.5
    """Each rollback multiplies the learning rate by this."""
    max_interventions: int = 3
    """Rollbacks allowed within intervention_window steps; the next one pauses DIO instead."""
    intervention_window: int = 2000
    """Steps over which rollbacks are counted."""
    overfit_evals: int = 3
    """Report overfitting when validation loss rose this many evals in a row while training
    loss fell (reported with a suggestion; the watchdog does not act on it)."""

    def __post_init__(self) -> None:
        _positive(
            self, "window", "min_history", "spikes_to_rollback", "max_interventions", "intervention_window"
        )
        if self.spike_sigmas <= 0 or self.grad_norm_sigmas < 0:
            raise ValueError("spike_sigmas must be > 0 and grad_norm_sigmas >= 0")
        if not 0 < self.lr_factor <= 1:
            raise ValueError(f"lr_factor must be in (0, 1], got {self.lr_factor}")
        if self.min_history > self.window:
            raise ValueError("min_history must be <= window")


@dataclass(frozen=True)
class OracleConfig:
    """Talking to DIO: where a loot's copy of the weights lives while it answers."""

    placement: str = "auto"
    """auto | beside | swap. beside: a loot is loaded next to the training model; swap:
    its weights replace the training model's while training is paused, and are put back
    (checked bit for bit); auto: beside on a CPU or when the GPU has room, else swap."""
    loaded_loot: int = 2
    """Loot copies kept loaded for the Oracle (least recently used is dropped)."""
    max_new_tokens: int = 256
    """Default reply length, in tokens (1..4096, the most an Ask may request)."""

    def __post_init__(self) -> None:
        _positive(self, "loaded_loot", "max_new_tokens")
        _choice(self, "placement", ORACLE_PLACEMENTS)
        if self.max_new_tokens > MAX_REPLY_TOKENS:
            raise ValueError(f"max_new_tokens must be at most {MAX_REPLY_TOKENS}, got {self.max_new_tokens}")


@dataclass(frozen=True)
class HeroConfig:
    """Fixed when a hero is created: which model it is, and how it trains."""

    name: str = "dio"
    """The hero's name (its save folder's name)."""
    model: str = ""
    """A local Hugging Face folder; empty = the hatchling."""
    mode: str = "full"
    """full | lora | qlora (a 4-bit base + LoRA, CUDA only)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """The adapters of modes lora and qlora."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The optimizer, batch and schedule."""
    game: GameConfig = field(default_factory=GameConfig)
    """Loot, evals, levels and quests."""
    vault: VaultConfig = field(default_factory=VaultConfig)
    """Which loot is kept."""
    oracle: OracleConfig = field(default_factory=OracleConfig)
    """Chatting with loot and the live weights."""
    evals: EvalsConfig = field(default_factory=EvalsConfig)
    """The user's eval suites."""
    sparring: SparringConfig = field(default_factory=SparringConfig)
    """Mistakes into training."""
    tasks: TasksConfig = field(default_factory=TasksConfig)
    """When background tasks may use the GPU."""
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    """Spikes, NaN and rollbacks."""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"hero name {self.name!r} must be a plain folder name")
        _choice(self, "mode", MODES)

    @property
    def model_label(self) -> str:
        label = shown_name(self.model) if self.model else "hatchling"
        return label if self.mode == "full" else f"{label} ({self.mode})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeroConfig:
        game = dict(data.get("game", {}))
        vault = dict(data.get("vault", {}))
        legacy = game.pop("keep_auto_checkpoints", None)  # heroes made before the vault policy
        if legacy is not None:
            vault.setdefault("keep_last", legacy)
        return cls(
            name=data["name"],
            model=data.get("model", ""),
            mode=data.get("mode", "full"),
            lora=_build(LoraConfig, data.get("lora", {})),
            train=_build(TrainConfig, data.get("train", {})),
            game=_build(GameConfig, game),
            vault=_build(VaultConfig, vault),
            oracle=_build(OracleConfig, data.get("oracle", {})),
            evals=_build(EvalsConfig, data.get("evals", {})),
            sparring=_build(SparringConfig, data.get("sparring", {})),
            watchdog=_build(WatchdogConfig, data.get("watchdog", {})),
            tasks=_build(TasksConfig, data.get("tasks", {})),
        )

    @classmethod
    def load(cls, path: Path) -> HeroConfig:
        """The hero's settings; ValueError naming the file and the field for a file that is
        not one (edited by hand, half-written); OSError when it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"a JSON object of settings, not {type(data).__name__}")
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            detail = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{path} is not a valid config: {detail}") from None


# ---------------------------------------------------------------------- flags from fields

# Settings a run may override from the command line (`realm train`, `python -m engine`):
# (section, field). Their flags, types and help come from the dataclasses above.
OVERRIDES: tuple[tuple[str, str], ...] = (
    ("game", "max_steps"),
    ("game", "checkpoint_every"),
    ("game", "eval_every"),
    ("train", "threads"),
    ("train", "seq_len"),
)
_SECTIONS: dict[str, type] = {
    "train": TrainConfig,
    "game": GameConfig,
    "lora": LoraConfig,
    "vault": VaultConfig,
    "oracle": OracleConfig,
    "evals": EvalsConfig,
    "sparring": SparringConfig,
    "watchdog": WatchdogConfig,
    "tasks": TasksConfig,
}


@cache
def field_help(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal right after it in the class body)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_override_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per OVERRIDES entry, typed and explained by its dataclass field."""
    for section, name in OVERRIDES:
        cls = _SECTIONS[section]
        spec = next(f for f in fields(cls) if f.name == name)
        default = spec.default if spec.default is not MISSING else None
        parser.add_argument(
            flag_name(name),
            dest=name,
            type=type(default) if default is not None else str,
            metavar="N" if isinstance(default, int) else "VALUE",
            help=f"{field_help(cls)[name]} (hero default: {default})",
        )


def override_args(args: argparse.Namespace) -> list[str]:
    """The override flags given on one command line, to pass on to another."""
    out: list[str] = []
    for _section, name in OVERRIDES:
        value = getattr(args, name, None)
        if value is not None:
            out += [flag_name(name), str(value)]
    return out


def apply_overrides(config: HeroConfig, args: argparse.Namespace) -> HeroConfig:
    """The config with the override flags that were given applied (validated again)."""
    changes: dict[str, dict[str, Any]] = {}
    for section, name in OVERRIDES:
        value = getattr(args, name, None)
        if value is not None:
            changes.setdefault(section, {})[name] = value
    for section, values in changes.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


# ---------------------------------------------------------------------- validation


def _build(cls: Any, data: dict[str, Any]) -> Any:
    section = next((name for name, kind in _SECTIONS.items() if kind is cls), cls.__name__)
    if not isinstance(data, dict):
        raise ValueError(f"{section} must be an object of settings, not {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    hints = _hints(cls)
    for name, value in data.items():
        if not _is_a(value, hints[name]):
            raise ValueError(f"{section}.{name} must be {_kind_name(hints[name])}, not {value!r}")
    return cls(**data)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_a(value: Any, hint: Any) -> bool:
    """A JSON value of the field's type (checked before the dataclass's own validation,
    which compares numbers and would fail with a TypeError on a string)."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if typing.get_origin(hint) is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(_is_a(k, key) and _is_a(v, item) for k, v in value.items())
    return True  # a type this file does not use yet: the dataclass decides


def _kind_name(hint: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    return names.get(hint, "an object of names to numbers" if typing.get_origin(hint) is dict else str(hint))


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def _choice(obj: object, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
