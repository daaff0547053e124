"""Run configuration: small dataclasses, validated, saved with every checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1234
    micro_batch: int = 8  # packed rows per forward pass (8 x 256 tokens: quick steps on a CPU)
    grad_accum: int = 1  # micro-batches per optimizer step
    seq_len: int = 256  # fits an SY puzzle and its answer; short BIN examples pack 8 a row
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio and stays there
    warmup_steps: int = 50
    decay_steps: int = 20_000  # length of the cosine; an idle game trains on past it
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16 (auto: bf16 on a GPU that has it)
    threads: int = 0  # torch CPU threads; 0 lets torch decide
    gradient_checkpointing: str = "auto"  # auto | on | off (auto: on when the VRAM estimate needs it)

    def __post_init__(self) -> None:
        _positive(self, "micro_batch", "grad_accum", "seq_len", "decay_steps")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("warmup_steps, weight_decay and grad_clip must be >= 0")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, not {self.precision!r}")
        if self.gradient_checkpointing not in ("auto", "on", "off"):
            raise ValueError("gradient_checkpointing must be auto, on or off")


@dataclass(frozen=True)
class GameConfig:
    """How training becomes a game: cadence of loot, evals, levels."""

    xp_per_level: int = 1000
    checkpoint_every: int = 250  # steps between automatic loot
    keep_auto_checkpoints: int = 5  # older automatic loot is pruned; manual loot is kept
    eval_every: int = 100
    eval_problems: int = 0  # problems per eval; 0 = the skill YAML's eval_size
    val_examples: int = 64
    skills: dict[str, float] = field(default_factory=lambda: {"bin": 1.0, "sy": 0.1})  # id -> weight
    rehearsal: float = 0.2  # share of training on levels below the current one
    max_steps: int = 0  # stop (and save) after this many steps; 0 = train forever
    quest_share: float = 0.8  # while a quest is active: its share of examples (the rest rehearses skills)
    quest_checks: str = "standard"  # standard | deep (leakage): the default for quests

    def __post_init__(self) -> None:
        _positive(self, "xp_per_level", "checkpoint_every", "eval_every", "val_examples")
        if self.eval_problems < 0:
            raise ValueError("eval_problems must be >= 0")
        if not self.skills or any(w <= 0 for w in self.skills.values()):
            raise ValueError("skills must name at least one skill, each with a weight > 0")
        if not 0 <= self.rehearsal < 1:
            raise ValueError("rehearsal must be in [0, 1)")
        if self.keep_auto_checkpoints < 1:
            raise ValueError("keep_auto_checkpoints must be >= 1")
        if self.max_steps < 0:
            raise ValueError("max_steps must be >= 0")
        if not 0 < self.quest_share <= 1:
            raise ValueError("quest_share must be in (0, 1]")
        if self.quest_checks not in ("standard", "deep"):
            raise ValueError("quest_checks must be standard or deep")


MODES = ("full", "lora", "qlora")


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters (modes lora and qlora); ``targets`` "all-linear" = every linear layer
    of the transformer blocks (peft leaves the output layer out)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: str = "all-linear"  # or a comma-separated list of module names

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
class HeroConfig:
    """Fixed when a hero is created: which model it is."""

    name: str = "dio"
    model: str = ""  # a local Hugging Face folder; empty = the hatchling
    mode: str = "full"  # full | lora | qlora (4-bit base + LoRA, CUDA only)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    game: GameConfig = field(default_factory=GameConfig)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"hero name {self.name!r} must be a plain folder name")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")

    @property
    def model_label(self) -> str:
        label = self.model or "hatchling"
        return label if self.mode == "full" else f"{label} ({self.mode})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeroConfig:
        return cls(
            name=data["name"],
            model=data.get("model", ""),
            mode=data.get("mode", "full"),
            lora=_build(LoraConfig, data.get("lora", {})),
            train=_build(TrainConfig, data.get("train", {})),
            game=_build(GameConfig, data.get("game", {})),
        )

    @classmethod
    def load(cls, path: Path) -> HeroConfig:
        return cls.from_dict(json.loads(path.read_text()))


def _build(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    return cls(**data)


def _positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
