"""A memory estimate made before training starts (shown in the game and by
`realm bench --estimate`), so a run that cannot fit says so before it begins.

    weights      full: fp32 master weights (4 B/param; autocast computes from them)
                 lora: the frozen base in bf16 on a GPU with bf16 units (2 B/param), else
                 fp32 (a CPU, a T4 or V100: engine/model/hero.py)
                 qlora: NF4 with double quantisation (~0.516 B/param); the embeddings and
                 the output layer in fp32 (peft's prepare_model_for_kbit_training casts
                 every layer it did not quantise to fp32)
    gradients    4 B per trainable parameter
    optimizer    AdamW: two fp32 moments, 8 B per trainable parameter
    activations  per layer ~34 · rows · seq_len · hidden bytes at 16-bit (Korthikanti et
                 al. 2022, with a fused attention kernel so no s² term): under bf16 or fp16
                 autocast (train.precision, as engine/train/trainer.py picks it), × 2 in fp32; with
                 gradient checkpointing only each layer's input is kept, plus one layer
    logits       the loss runs the output layer on target positions only, CE_CHUNK of them at
                 a time (engine/train/trainer.py): one chunk's 16-bit logits, fp32 copy and
                 gradient, instead of rows · seq_len · vocab of them
    overhead     CUDA context and allocator slack, a flat 0.75 GiB on a GPU

It is an estimate: docs/benchmarks.md compares it with measured peaks.

``plan_memory`` turns the estimate into the plan the engine follows: gradient
checkpointing when the config asks for it, or ("auto") when the estimate without it
would not fit the GPU.

Sharded over N ranks (`--gpus N --fsdp`, engine/train/shard.py) the plan is rank 0's, the
fullest: its whole copy of the weights, 1/N of the training weights, gradients and
optimizer state, and one layer's weights and gradients gathered at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from engine.protocol.messages.config import HeroConfig

GIB = 1024**3
CE_CHUNK = 1024  # engine/train/trainer.py's chunk (kept here so this module needs no torch)
NF4_BYTES_PER_PARAM = 0.516  # 4 bits + double-quantised absmax constants
QLORA_KEPT_BYTES = (
    4.0  # what QLoRA does not quantise: peft's prepare_model_for_kbit_training casts it to fp32
)
CUDA_OVERHEAD = 0.75 * GIB
AUTO_CHECKPOINTING_SHARE = 0.85  # of the GPU's memory: above it, "auto" checkpoints


def text_config(config: Any) -> Any:
    """The language model's part of a config: itself, or a multimodal wrapper's text config
    (Gemma 3 4B and up keep hidden_size and max_position_embeddings there)."""
    if hasattr(config, "get_text_config"):
        return config.get_text_config()
    return getattr(config, "text_config", None) or config


@dataclass(frozen=True)
class ModelShape:
    params: int
    hidden: int
    layers: int
    vocab: int
    tied: bool = True

    @classmethod
    def from_config(cls, config: Any) -> ModelShape:
        """From a transformers config (no weights needed); a multimodal one's text model."""
        config = text_config(config)
        hidden, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
        inter = getattr(config, "intermediate_size", 4 * hidden)
        heads = config.num_attention_heads
        kv = getattr(config, "num_key_value_heads", heads) or heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        attn = hidden * head_dim * (heads + 2 * kv) + heads * head_dim * hidden
        per_layer = attn + 3 * hidden * inter + 2 * hidden
        if getattr(config, "model_type", "") in ("qwen3", "qwen3_moe"):
            per_layer += 2 * head_dim  # Qwen3's per-head q/k norms
        tied = bool(getattr(config, "tie_word_embeddings", True))
        params = layers * per_layer + vocab * hidden * (1 if tied else 2) + hidden
        return cls(params=params, hidden=hidden, layers=layers, vocab=vocab, tied=tied)

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)


@dataclass(frozen=True)
class Numerics:
    """What a run keeps in 16 bits, as far as memory goes. Two separate questions: the
    activations follow the autocast dtype (``train.precision``: fp16 on a T4 is 16-bit
    activations over an fp32 base), the frozen base of LoRA follows the hardware
    (bf16 wherever a GPU has bf16 units, whatever the precision)."""

    gpu: bool
    half_activations: bool
    half_base: bool

    @classmethod
    def of(cls, precision: str, gpu: bool, bf16_units: bool) -> Numerics:
        """As engine/train/trainer.py's pick_precision and engine/model/hero.py decide:
        ``bf16_units`` is has_bf16 for the device (a GPU of compute capability 8.0 on, a
        CPU with AVX512_BF16 or AMX)."""
        half = precision == "fp16" or (precision != "fp32" and bf16_units)
        return cls(gpu=gpu, half_activations=half, half_base=gpu and bf16_units)


@dataclass(frozen=True)
class Estimate:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    overhead: float
    trainable: int

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.logits + self.overhead

    def as_dict(self) -> dict[str, float]:
        out = {k: round(v / GIB, 3) for k, v in asdict(self).items() if k != "trainable"}
        out["total"] = round(self.total / GIB, 3)
        out["trainable_params"] = self.trainable
        return out


def lora_params(shape: ModelShape, rank: int) -> int:
    """Adapters on every linear layer of the blocks: ~7 matrices per layer, each
    rank · (in + out); approximated with in = out = hidden for attention and the
    intermediate size ~3 · hidden for the MLP."""
    h = shape.hidden
    per_layer = 4 * rank * (2 * h) + 3 * rank * (h + 3 * h)
    return shape.layers * per_layer


def estimate(
    shape: ModelShape,
    mode: str,
    rows_shape: tuple[int, int],
    numerics: Numerics,
    lora_rank: int = 16,
    checkpointing: bool = False,
) -> Estimate:
    """The estimate for ``rows_shape`` (rows, seq_len) per micro-batch."""
    rows, seq_len = rows_shape
    trainable = shape.params if mode == "full" else lora_params(shape, lora_rank)
    base_bytes = 2.0 if numerics.half_base else 4.0
    if mode == "full":
        weights = 4.0 * shape.params
    elif mode == "lora":
        weights = base_bytes * shape.params
    else:  # qlora
        quantised = shape.params - shape.embedding_params
        weights = NF4_BYTES_PER_PARAM * quantised + QLORA_KEPT_BYTES * shape.embedding_params
    weights += 4.0 * trainable if mode != "full" else 0.0  # adapters live in fp32
    act_bytes = 2 if numerics.half_activations else 4
    tokens = rows * seq_len
    per_layer = 34 * tokens * shape.hidden * act_bytes / 2
    if checkpointing:
        activations = shape.layers * 2 * tokens * shape.hidden * act_bytes / 2 + per_layer
    else:
        activations = shape.layers * per_layer
    logits = min(tokens, CE_CHUNK) * shape.vocab * (act_bytes + 4 + 4) + tokens * shape.hidden * act_bytes
    return Estimate(
        weights=weights,
        gradients=4.0 * trainable,
        optimizer=8.0 * trainable,
        activations=activations,
        logits=logits,
        overhead=CUDA_OVERHEAD if numerics.gpu else 0.0,
        trainable=trainable,
    )


def sharded(est: Estimate, shape: ModelShape, ranks: int) -> Estimate:
    """Rank 0's part of a full fine-tune sharded over ``ranks`` (see the module's doc)."""
    layer = 4.0 * (shape.params - shape.embedding_params) / max(1, shape.layers)
    return replace(
        est,
        weights=est.weights + est.weights / ranks + layer,
        gradients=est.gradients / ranks + layer,
        optimizer=est.optimizer / ranks,
    )


def describe(est: Estimate, capacity: int | None, where: str) -> str:
    """One line for the game: 'est. 9.8 GiB of 79.1 GiB VRAM (weights 2.2, …)'."""
    parts = ", ".join(
        f"{name} {value / GIB:.1f}"
        for name, value in (
            ("weights", est.weights),
            ("optimizer", est.optimizer + est.gradients),
            ("activations", est.activations + est.logits),
        )
    )
    of = f" of {capacity / GIB:.1f} GiB" if capacity else ""
    return f"est. {est.total / GIB:.1f} GiB{of} {where} ({parts})"


def plan_memory(model: Any, device: torch.device, config: HeroConfig, shards: int = 1) -> tuple[str, bool]:
    """(the plan as one line, whether even the chosen plan is over the GPU's memory).
    Turns gradient checkpointing on in ``model`` when the plan needs it. ``shards``: the
    ranks the training state is sharded over (1: not sharded)."""
    line, over, checkpointing = choose_plan(model.config, device, config, shards)
    if checkpointing:
        checkpoint_activations(model)
    return line, over


def checkpoint_activations(model: Any) -> None:
    """Gradient checkpointing on, by transformers' current name for it (v5 renamed it
    activation checkpointing and warns on the old name; older versions have only that)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def checkpoints_activations(model: Any) -> bool:
    """Whether gradient checkpointing is on (by either name, as above)."""
    name = (
        "is_activation_checkpointing"
        if hasattr(model, "activation_checkpointing_enable")
        else "is_gradient_checkpointing"
    )
    return bool(getattr(model, name, False))


def choose_plan(
    model_config: Any, device: torch.device, config: HeroConfig, shards: int = 1
) -> tuple[str, bool, bool]:
    """(the plan as one line, over the GPU's memory?, gradient checkpointing?) for
    ``config`` (concrete rows and length) on this model and device; changes nothing."""
    import torch  # here, so the estimate above needs no torch

    from engine.model.hero import has_bf16

    gpu = device.type == "cuda"
    capacity = torch.cuda.get_device_properties(device).total_memory if gpu else None
    train = config.train
    rows_shape = (train.micro_batch, train.seq_len)
    return plan_for(
        ModelShape.from_config(model_config), config, rows_shape, capacity, has_bf16(device), shards
    )


def plan_for(
    shape: ModelShape,
    config: HeroConfig,
    rows_shape: tuple[int, int],
    capacity: int | None,
    bf16_units: bool,
    shards: int = 1,
) -> tuple[str, bool, bool]:
    """choose_plan without torch: ``capacity`` is the GPU's memory (None: the CPU),
    ``bf16_units`` whether that device has them (the hero's precision does the rest)."""
    gpu = capacity is not None
    numerics = Numerics.of(config.train.precision, gpu, bf16_units)

    def plan(checkpointing: bool) -> Estimate:
        est = estimate(shape, config.mode, rows_shape, numerics, config.lora.rank, checkpointing)
        return sharded(est, shape, shards) if shards > 1 else est

    wanted = config.train.gradient_checkpointing
    checkpointing = wanted == "on" or (
        wanted == "auto" and capacity is not None and plan(False).total > AUTO_CHECKPOINTING_SHARE * capacity
    )
    est = plan(checkpointing)
    line = describe(est, capacity, "VRAM" if gpu else "RAM")
    if shards > 1:
        line += f" · rank 0 of {shards}, sharded"
    if checkpointing:
        line += " · gradient checkpointing on"
    return line, capacity is not None and est.total > capacity, checkpointing
