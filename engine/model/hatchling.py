"""The hatchling: the default hero, a tiny Qwen3 built here from a config.

Nothing can be downloaded, so the tokenizer is trained locally with the
``tokenizers`` library on text the skills generate, and the model is a randomly
initialised ``Qwen3ForCausalLM``. Both are written with ``save_pretrained`` so every
later path (training, checkpoints, generation, export) is the one a real Qwen3 takes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from engine.model.hatchling_spec import EXTRA_TOKENS, PRETOKENIZERS, SPECIAL_TOKENS, HatchlingSpec
from skills.registry import all_skills

__all__ = ["CHAT_TEMPLATE", "EXTRA_TOKENS", "PRETOKENIZERS", "SPECIAL_TOKENS", "HatchlingSpec", "hatch"]

# ChatML, the format Qwen3 uses. The hatchling has no thinking mode, so the
# generation prompt is the bare assistant header.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
_ENGLISH = (
    "The hero trains every day. What is the answer? Solve the puzzle and show your work. "
    "Answer with the number only. Please explain step by step. The quick brown fox jumps "
    "over the lazy dog. You are a helpful assistant. Translate, summarise, classify, write "
    "a short story about a dragon, a tavern, a quest and a sword of gold."
)


def _corpus(lines_per_skill: int = 3000) -> Iterator[str]:
    """Text for the tokenizer: samples of every built-in skill plus some English."""
    rng = random.Random(0)
    for role in ("system", "user", "assistant"):
        for _ in range(200):
            yield f"{role}\n"
    for _ in range(200):
        words = _ENGLISH.split()
        rng.shuffle(words)
        yield " ".join(words)
    for skill in all_skills():
        for index in range(lines_per_skill):
            level = 1 + index % skill.max_level
            problem = skill.generate(level, index, split="train")
            yield problem.prompt
            yield problem.answer


def _pretokenizer(name: str) -> pre_tokenizers.PreTokenizer:
    # Single digits, like Qwen: arithmetic is learnable only if numbers are not merged.
    digits = pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated")
    if name == "gpt2":
        return pre_tokenizers.Sequence(
            [digits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    # "split": spaces, punctuation and every capital letter are pieces of their own, so a
    # lowercase run (an SY tile) has the same ids wherever it appears.
    return pre_tokenizers.Sequence(
        [
            digits,
            pre_tokenizers.Split(Regex(r"[^\p{Ll}]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def build_tokenizer(vocab_size: int, pretokenizer: str = "gpt2") -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = _pretokenizer(pretokenizer)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=2048,
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    fast.add_tokens(EXTRA_TOKENS)
    return fast


def build_model(spec: HatchlingSpec, tokenizer: PreTrainedTokenizerFast) -> Qwen3ForCausalLM:
    import torch

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        head_dim=spec.hidden_size // spec.heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(spec.seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def hatch(folder: Path, spec: HatchlingSpec | None = None) -> Path:
    """Create a fresh hatchling in ``folder`` (an ordinary Hugging Face model folder)."""
    spec = spec or HatchlingSpec()
    tokenizer = build_tokenizer(spec.vocab_size, spec.pretokenizer)
    model = build_model(spec, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
