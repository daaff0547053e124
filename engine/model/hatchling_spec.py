"""The hatchling's size and tokenizer choices: a small dataclass with no torch or
transformers behind it, so the start screen's memory estimate (engine/model/estimate.py)
reads it in a blink. engine/model/hatchling.py builds the model from it."""

from __future__ import annotations

from dataclasses import dataclass

PRETOKENIZERS = ("gpt2", "split")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EXTRA_TOKENS = ["<think>", "</think>"]


@dataclass(frozen=True)
class HatchlingSpec:
    """Sized so it learns visibly on two CPU cores (about 3.4M parameters)."""

    vocab_size: int = 1024
    hidden_size: int = 256
    intermediate_size: int = 768
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    max_positions: int = 2048
    seed: int = 0
    # gpt2: byte-level BPE with single digits (the default). split: spaces, punctuation
    # and capitals as pieces of their own; tried for SY in issue #13 and not kept (SY
    # examples 70% longer; quoting SY tiles gave the same ids without it).
    pretokenizer: str = "gpt2"

    def __post_init__(self) -> None:
        if self.pretokenizer not in PRETOKENIZERS:
            raise ValueError(f"pretokenizer must be one of {', '.join(PRETOKENIZERS)}")
        if self.hidden_size % self.heads:
            raise ValueError("hidden_size must be a multiple of heads")
        if self.heads % self.kv_heads:
            raise ValueError("heads must be a multiple of kv_heads")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must leave room for the 256 byte tokens")
