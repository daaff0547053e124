"""The Oracle: talk to any loot, or to the live weights, strictly.

Strict means three things. The reply names the loot (its step) and a short hash of the
weights that actually produced it, computed from the tensors in memory. A loot that
does not exist is an error that lists those that do. And nothing falls back to other
weights: if a loot cannot be loaded, the question fails.

Where a loot's weights live while it answers (``OracleConfig.placement``):

- beside: a second copy next to the training model (cheap for the hatchling; on a GPU
  when there is room). Loaded copies are kept, least recently used dropped first.
- swap: the loot's weights are copied *into* the training model while training is
  paused, and the training weights are put back after, then checked bit for bit
  against their hash from before (the optimizer is never touched: its hash is checked
  too). For a GPU that has no room for a second copy.

Generation runs under ``torch.random.fork_rng``: asking, even with sampling, leaves
the training RNG exactly where it was, so the next step's loss is the one it would
have been (tests/engine/test_oracle.py).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.generation.streamers import TextStreamer

from engine.protocol.config import HeroConfig
from engine.train.chat import ChatRenderer, Message

TextSink = Callable[[str], None]


class OracleError(Exception):
    """The question cannot be answered as asked; the message says why."""


class TooLong(OracleError):
    """The messages leave no room for a reply in the model's context."""


class Unrenderable(OracleError):
    """The model's own chat template refuses these messages (Gemma's: no system turn;
    Mistral's: turns that do not alternate user/assistant)."""


def context_of(config: Any) -> int | None:
    """The model's context in tokens (its positions), when its config says."""
    from engine.model.memory import text_config

    value = getattr(text_config(config), "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def room_for_reply(prompt_tokens: int, context: int | None, wanted: int) -> int:
    """The new tokens a reply may have: ``wanted``, or what the context has left past the
    prompt (the reply then ends with finish_reason "length"). Past the context a model
    answers garbage, and a long enough prompt takes the memory DIO trains with."""
    if context is None:
        return wanted
    if prompt_tokens >= context:
        raise TooLong(
            f"the messages come to {prompt_tokens:,} tokens and the model's context is "
            f"{context:,}: send fewer or shorter messages (a new chat)"
        )
    return min(wanted, context - prompt_tokens)


@dataclass(frozen=True)
class Settings:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()  # generation ends once one of these is written (`realm serve`)


@dataclass(frozen=True)
class Reply:
    text: str
    new_tokens: int
    seconds: float
    first_token_s: float | None
    prompt_tokens: int = 0
    limit: int = 0  # the new tokens it was allowed (max_new_tokens, or less near the context's end)


def turns_to_messages(turns: tuple[str, ...] | list[str]) -> list[Message]:
    """user, assistant, user, … → chat messages."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


def _bytes(tensor: torch.Tensor) -> bytes:
    data = tensor.detach().contiguous().cpu().reshape(-1)
    return data.view(torch.uint8).numpy().tobytes() if data.numel() else b""


def weights_hash(model: Any) -> str:
    """A short hash of every parameter and buffer, by name, bytes as they are in memory."""
    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()


def optimizer_hash(optimizer: Any) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for key, state in sorted(optimizer.state_dict()["state"].items()):
        digest.update(str(key).encode())
        for name, value in sorted(state.items()):
            digest.update(name.encode())
            if isinstance(value, torch.Tensor):
                digest.update(_bytes(value))
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


class _Stream(TextStreamer):
    """transformers' incremental decoder (it holds back half-formed words), sending each
    finished piece to ``sink`` and timing the first token."""

    def __init__(self, tokenizer: Any, sink: TextSink | None) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.sink = sink
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self.new_tokens = 0
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if self.prompt_seen:
            self.new_tokens += int(value.numel())
            if self.first_token_s is None:
                self.first_token_s = time.perf_counter() - self.started
        self.prompt_seen = True
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text and self.sink is not None:
            self.sink(text)


@torch.no_grad()
def generate(
    model: Any,
    renderer: ChatRenderer,
    messages: list[Message],
    settings: Settings,
    device: torch.device,
    sink: TextSink | None = None,
) -> Reply:
    """One reply, through the hero's chat template (thinking off, as in training),
    streamed piece by piece to ``sink``; the caller's RNG and train/eval mode are left
    as they were."""
    tokenizer = renderer.tokenizer
    ids = torch.tensor([renderer.prompt_ids(messages)], device=device)
    limit = room_for_reply(ids.shape[1], context_of(model.config), settings.max_new_tokens)
    stream = _Stream(tokenizer, sink)
    was_training = model.training
    model.eval()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(settings.seed)
            sampling = settings.temperature > 0
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=limit,
                do_sample=sampling,
                temperature=settings.temperature if sampling else None,
                top_p=settings.top_p if sampling else None,
                top_k=None,
                eos_token_id=renderer.stop_ids,
                pad_token_id=tokenizer.pad_token_id,
                streamer=stream,
                **({"stop_strings": list(settings.stop), "tokenizer": tokenizer} if settings.stop else {}),
            )
    finally:
        model.train(was_training)
    new = out[0, ids.shape[1] :]
    text = tokenizer.decode(new, skip_special_tokens=True)
    seconds = time.perf_counter() - stream.started
    return Reply(text, int(new.numel()), seconds, stream.first_token_s, int(ids.shape[1]), limit)


# --------------------------------------------------------------------------- loot copies


def answering_dtype(device: torch.device) -> torch.dtype:
    """bf16 weights for answering on a GPU with bf16 units; fp32 elsewhere."""
    from engine.model.hero import has_bf16

    return torch.bfloat16 if device.type == "cuda" and has_bf16(device) else torch.float32


def load_copy(folder: Path, config: HeroConfig, base: Path, device: torch.device) -> Any:
    """A loot's weights as a model for answering: the folder itself (mode full), or the
    hero's base with the loot's adapters (lora, qlora)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    dtype = answering_dtype(device)
    try:
        if config.mode == "full":
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device)  # type: ignore[arg-type]
        else:
            from peft import PeftModel

            if config.mode == "qlora":
                from engine.model.hero import load_hero

                hero = load_hero(base, device, config.model_label, "qlora", config.lora, folder)
                model = hero.model
            else:
                base_model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device)  # type: ignore[arg-type]
                model = PeftModel.from_pretrained(base_model, folder)
    except (OSError, ValueError) as exc:
        raise OracleError(f"loot {folder.name} cannot be loaded: {exc}") from None
    model.eval()
    return model


def load_base(base: Path, device: torch.device) -> Any:
    """The hero's base model as it was before any training (the timeline's first answer)."""
    from transformers import AutoModelForCausalLM

    dtype = answering_dtype(device)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device)  # type: ignore[arg-type]
    model.eval()
    return model


class LootCopies:
    """Loaded loot, least recently used dropped first; each with its weights hash."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.models: OrderedDict[str, tuple[Any, str]] = OrderedDict()

    def get(self, name: str, load: Callable[[], Any]) -> tuple[Any, str]:
        if name in self.models:
            self.models.move_to_end(name)
            return self.models[name]
        while len(self.models) >= self.size:
            self.models.popitem(last=False)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        model = load()
        self.models[name] = (model, weights_hash(model))
        return self.models[name]

    def forget(self, name: str) -> None:
        self.models.pop(name, None)


def swap_in(model: Any, folder: Path, mode: str) -> dict[str, torch.Tensor]:
    """Copy a loot's weights into ``model`` (the training model); returns what was there
    (on the CPU) for ``swap_out``."""
    from safetensors.torch import load_file

    if mode == "full":
        files = sorted(folder.glob("model*.safetensors"))
        saved: dict[str, torch.Tensor] = {}
        for f in files:
            saved.update(load_file(str(f)))
        live = model.state_dict()
        backup = {k: live[k].detach().to("cpu", copy=True) for k in saved if k in live}
        missing = [k for k in saved if k not in live]
        if missing:
            raise OracleError(f"loot {folder.name} does not fit this model ({missing[0]} …)")
        for key, tensor in saved.items():
            live[key].copy_(tensor)
        return backup
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    backup = {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(model).items()}
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    return backup


@torch.no_grad()
def swap_out(model: Any, backup: dict[str, torch.Tensor], mode: str) -> None:
    if mode == "full":
        live = model.state_dict()
        for key, tensor in backup.items():
            live[key].copy_(tensor)
        return
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, backup)
