"""Chat rendering with assistant-only labels.

The mask is derived by rendering, not from template markers: Qwen3's template has no
``{% generation %}`` blocks, and rewrites history (it drops old ``<think>`` blocks), so
we render the whole conversation once, find each assistant turn's characters in that
text (its start is where the prompt rendered with a generation prompt ends; its end
is the end-of-turn marker after its content), and map characters to tokens with the
fast tokenizer's offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.protocol.config import StartRefused

Message = dict[str, str]


class UnusableTokenizer(StartRefused):
    """A tokenizer the renderer cannot work with: the engine stops at start saying why."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One tokenised conversation: ``trainable[i]`` says token i is an assistant token."""

    input_ids: tuple[int, ...]
    trainable: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.input_ids)


class ChatRenderer:
    """Renders conversations for one tokenizer with the same settings everywhere
    (training, evals, the oracle): the hero speaks one dialect."""

    def __init__(self, tokenizer: Any, enable_thinking: bool = False) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise UnusableTokenizer(
                "the model's tokenizer is not a fast one (character offsets are needed to find the "
                "answers): give its folder a tokenizer.json (`AutoTokenizer.from_pretrained(folder)"
                ".save_pretrained(folder)` writes one where transformers can convert it)"
            )
        if tokenizer.chat_template is None:
            raise UnusableTokenizer("the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.enable_thinking = enable_thinking
        self.end_of_turn = self._end_of_turn()
        self.stop_ids = self._stop_ids()

    def _end_of_turn(self) -> str:
        """What the template writes after an assistant's content, through its end-of-turn
        token: ChatML's ``<|im_end|>``, Gemma's ``<end_of_turn>``, Llama 3's ``<|eot_id|>``,
        Phi-3's ``<|end|>``, Llama 2's `` </s>`` — not always the end-of-sequence token. DIO
        learns to write it, and generation stops at it (``stop_ids``). Found by rendering a
        probe answer; "" when the template ends a turn with no token (DIO cannot learn to stop)."""
        probe = "Zq probe answer"
        text = self.text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": probe}])
        after = text[text.rfind(probe) + len(probe) :]
        gap = len(after) - len(after.lstrip())  # spaces or newlines before the marker
        candidates = {t.content for t in getattr(self.tokenizer, "added_tokens_decoder", {}).values()}
        candidates = {t for t in candidates | {self.tokenizer.eos_token} if t}
        marker = next(
            (t for t in sorted(candidates, key=len, reverse=True) if after.startswith(t, gap)), None
        )
        return after[: gap + len(marker)] if marker else ""

    def _stop_ids(self) -> list[int]:
        """Token ids that end an answer: the end of turn DIO learned, and end of sequence."""
        ids = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        marker = self.end_of_turn.strip()
        if marker:
            marker_id = self.tokenizer.convert_tokens_to_ids(marker)
            if (
                isinstance(marker_id, int)
                and marker_id != self.tokenizer.unk_token_id
                and marker_id not in ids
            ):
                ids.append(marker_id)
        return ids

    def text(self, messages: list[Message], add_generation_prompt: bool = False) -> str:
        rendered = self.tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=self.enable_thinking,
        )
        return str(rendered)

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """Tokens of a prompt ready for generation (what evals and the oracle feed)."""
        text = self.text(messages, add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def assistant_spans(self, messages: list[Message], full: str) -> list[tuple[int, int]]:
        """Character spans of each assistant turn in ``full`` (content + end of turn),
        except those of weight 0."""
        spans: list[tuple[int, int]] = []
        cursor = 0
        eot = self.end_of_turn
        for i, message in enumerate(messages):
            content = message["content"]
            if message["role"] != "assistant" or message.get("weight") == 0:
                # Move past this turn so an answer is never found inside a prompt (an
                # assistant turn of weight 0 is context, like a prompt).
                found = full.find(content, cursor)
                cursor = found + len(content) if found >= 0 else cursor
                continue
            prefix = self.text(messages[:i], add_generation_prompt=True)
            if full.startswith(prefix) and full.startswith(content + eot, len(prefix)):
                start = len(prefix)  # the template renders history unchanged
            else:
                # The template rewrote this turn (Qwen3 drops old <think> blocks and
                # adds an empty one to the last): find what it kept, anchored on the
                # end-of-turn marker so a short answer cannot match template text.
                # Llama 3's template trims each turn: an answer ending in "\n" (common in
                # data sets) is rendered without it.
                kept = [content, content.split("</think>")[-1].lstrip("\n"), content.strip()]
                hits = [(full.find(k + eot, cursor), k) for k in kept if k]
                hits = [(at, k) for at, k in hits if at >= 0]
                if not hits:
                    raise ValueError(f"assistant turn {i} not found in the rendered text")
                start, content = min(hits)
            end = start + len(content) + len(eot)  # DIO must learn to stop
            spans.append((start, end))
            cursor = end
        return spans

    def render(self, messages: list[Message]) -> Rendered:
        if not any(m["role"] == "assistant" for m in messages):
            raise ValueError("a training conversation needs at least one assistant turn")
        full = self.text(messages)
        spans = self.assistant_spans(messages, full)
        encoded = self.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        trainable = []
        for start, end in encoded["offset_mapping"]:
            trainable.append(any(s <= start and end <= e and end > start for s, e in spans))
        return Rendered(tuple(encoded["input_ids"]), tuple(trainable))

    def render_completion(self, prompt: str, completion: str | None) -> Rendered:
        """A completion_v1 row, no chat template: ``text`` alone trains on every token;
        ``prompt`` + ``completion`` trains on the completion (and the end marker)."""
        tok = self.tokenizer
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        if completion is None:
            ids = list(tok(prompt, add_special_tokens=False)["input_ids"]) + eos
            return Rendered(tuple(ids), (True,) * len(ids))
        head = list(tok(prompt, add_special_tokens=False)["input_ids"])
        tail = list(tok(completion, add_special_tokens=False)["input_ids"]) + eos
        return Rendered(tuple(head + tail), (False,) * len(head) + (True,) * len(tail))

    def render_row(self, row: dict[str, Any]) -> Rendered:
        """Any validated quest row (engine/quests/format.py normalises them to these)."""
        if "messages" in row:
            return self.render(row["messages"])
        if "text" in row:
            return self.render_completion(row["text"], None)
        return self.render_completion(row["prompt"], row["completion"])
