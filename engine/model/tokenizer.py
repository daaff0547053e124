"""The hero's tokenizer, with a chat template even where the model shipped none.

Every skill, quest and eval is a conversation, and a base model (most pre-trained
checkpoints: Qwen3-0.6B-Base, Llama-3.2-1B) ships no chat template. Such a tokenizer gets
BASE_CHAT_TEMPLATE: ChatML turns that end in the model's own end-of-sequence token, the
end of turn the renderer (engine/train/chat.py) trains DIO to write and generation stops
at. Its markers are plain text where the vocabulary has no ``<|im_start|>`` (no new
embeddings to learn). Loot saves the tokenizer with it, so the Oracle, `realm serve` and
`realm export` speak as DIO was trained to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BASE_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


class NoChatFormat(ValueError):
    """Neither a chat template nor an end-of-sequence token: no way to mark an answer's end."""


def load_tokenizer(folder: Path) -> Any:
    """``folder``'s tokenizer, with BASE_CHAT_TEMPLATE where it has no chat template and
    its end-of-sequence token as padding where it has no pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    give_chat_format(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def give_chat_format(tokenizer: Any) -> None:
    """Set BASE_CHAT_TEMPLATE on a tokenizer without a chat template (the engine's log
    book says so at start: engine/run/worker.py)."""
    if tokenizer.chat_template is not None:
        return
    if tokenizer.eos_token is None:
        raise NoChatFormat(
            "the tokenizer has no chat template and no end-of-sequence token, so an answer's end "
            "cannot be marked: give the model folder a chat template (tokenizer_config.json)"
        )
    tokenizer.chat_template = BASE_CHAT_TEMPLATE
