"""Loss only on assistant tokens: prompt and template tokens are masked, for the
hatchling's ChatML template and for a Qwen3-style template that rewrites history."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from engine.train.chat import ChatRenderer

# The shape of Qwen3's template: no generation markers, an empty think block before
# the final assistant answer, and earlier assistant turns stripped of their thinking.
QWEN3_STYLE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- set content = message['content'] %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if loop.last %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{{- content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(hatchling_dir: Path):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(hatchling_dir)


def trained_text(renderer: ChatRenderer, messages: list[dict[str, str]]) -> str:
    rendered = renderer.render(messages)
    ids = [t for t, keep in zip(rendered.input_ids, rendered.trainable, strict=True) if keep]
    return str(renderer.tokenizer.decode(ids))


def test_prompt_tokens_are_masked(tokenizer) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(tokenizer)
    messages = [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "17+5="},
        {"role": "assistant", "content": "22"},
    ]
    rendered = renderer.render(messages)
    assert trained_text(renderer, messages) == "22<|im_end|>"
    # Every token before the answer is masked: the prompt teaches nothing.
    first = rendered.trainable.index(True)
    assert not any(rendered.trainable[:first])
    assert tokenizer.decode(rendered.input_ids[:first]).endswith("<|im_start|>assistant\n")


def test_every_assistant_turn_is_trained(tokenizer) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(tokenizer)
    messages = [
        {"role": "user", "content": "1+1="},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2="},
        {"role": "assistant", "content": "4"},
    ]
    assert trained_text(renderer, messages) == "2<|im_end|>4<|im_end|>"


def test_an_assistant_turn_of_weight_0_is_context_not_trained(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """OpenAI's fine-tuning files mark turns not to learn with weight 0 (quest format keeps it)."""
    from engine.quests.format import to_spec

    row = {
        "messages": [
            {"role": "user", "content": "1+1="},
            {"role": "assistant", "content": "3", "weight": 0},  # a wrong answer, shown only
            {"role": "user", "content": "Try again."},
            {"role": "assistant", "content": "2", "weight": 1},
        ]
    }
    _spec, _source, quest_row = to_spec(row, 1)
    renderer = ChatRenderer(tokenizer)
    assert trained_text(renderer, quest_row["messages"]) == "2<|im_end|>"
    assert "3<|im_end|>" in renderer.text(quest_row["messages"])  # still in what DIO reads


def test_qwen3_style_template(tokenizer) -> None:  # type: ignore[no-untyped-def]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = QWEN3_STYLE
    renderer = ChatRenderer(tokenizer, enable_thinking=False)
    messages = [
        {"role": "user", "content": "9+9="},
        {"role": "assistant", "content": "<think>\nnine and nine\n</think>\n\n18"},
        {"role": "user", "content": "3+4="},
        {"role": "assistant", "content": "7"},
    ]
    text = trained_text(renderer, messages)
    # The first answer's thinking was stripped by the template; what is trained is what
    # the template rendered, and the template's own empty think block is not trained.
    assert text == "18<|im_end|>7<|im_end|>"
    assert "nine" not in renderer.text(messages)


def test_conversation_without_answer_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="assistant"):
        ChatRenderer(tokenizer).render([{"role": "user", "content": "hi"}])


# Gemma's shape: turns end in <end_of_turn> (here the hatchling's <|endoftext|>, a special
# token that is not its end-of-sequence token), and the assistant is called "model".
GEMMA_STYLE = (
    "{%- for message in messages %}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{- '<|im_start|>' + role + '\\n' + message['content'] + '<|endoftext|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>model\\n' }}{%- endif %}"
)
LLAMA2_STYLE = (  # the end of sequence after a space
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' ' + message['content'] + ' ' + eos_token }}{%- endif %}"
    "{%- endfor %}"
)
PHI_STYLE = (  # the marker on a line of its own
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '\n<|endoftext|>\n' }}"
    "{%- endfor %}"
)
LLAMA3_STYLE = (  # every turn trimmed
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n\n' + message['content'] | trim + '<|endoftext|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n\n' }}{%- endif %}"
)
PLAIN_STYLE = (
    "{%- for message in messages %}{{- message['role'] + ': ' + message['content'] + '\\n' }}{%- endfor %}"
)


@pytest.mark.parametrize(
    ("template", "end_of_turn", "trained"),
    [
        (GEMMA_STYLE, "<|endoftext|>", "7<|endoftext|>"),
        (LLAMA2_STYLE, " <|im_end|>", "7 <|im_end|>"),
        (PHI_STYLE, "\n<|endoftext|>", "7\n<|endoftext|>"),
        (PLAIN_STYLE, "", "7"),
    ],
    ids=[
        "a turn marker other than the end of sequence",
        "the end of sequence after a space",
        "the marker after a newline",
        "no marker",
    ],
)
def test_the_end_of_turn_is_what_the_template_writes(
    tokenizer,  # type: ignore[no-untyped-def]
    template: str,
    end_of_turn: str,
    trained: str,
) -> None:
    """Not always the end-of-sequence token (Gemma, Phi-3, Llama 2): with the end of
    sequence assumed, these templates failed ("assistant turn not found") or taught DIO
    to stop where generation does not stop. DIO learns the marker and generation stops at it."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = template
    renderer = ChatRenderer(tokenizer)
    assert renderer.end_of_turn == end_of_turn
    assert (
        trained_text(renderer, [{"role": "user", "content": "3+4="}, {"role": "assistant", "content": "7"}])
        == trained
    )
    expected_stops = {tokenizer.eos_token_id}
    if end_of_turn.strip():
        expected_stops.add(tokenizer.convert_tokens_to_ids(end_of_turn.strip()))
    assert set(renderer.stop_ids) == expected_stops


def test_evals_and_the_oracle_stop_at_the_end_of_turn(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Both ask generate to stop at every id of the renderer's stop_ids."""
    import torch

    from engine.evals.skill_evals import answer_batches
    from engine.oracle.chat import Settings, generate

    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = GEMMA_STYLE
    renderer = ChatRenderer(tokenizer)

    class Model:  # records what generate was asked
        training = False
        config = type("Config", (), {"max_position_embeddings": 2048})()

        def eval(self) -> None: ...

        def train(self, mode: bool = True) -> None: ...

        def generate(self, **kwargs: object) -> torch.Tensor:
            self.asked = kwargs
            ids = kwargs["input_ids"]
            assert isinstance(ids, torch.Tensor)
            return torch.cat([ids, torch.full((ids.shape[0], 1), tokenizer.eos_token_id)], dim=1)

    model = Model()
    next(answer_batches(model, renderer, [[{"role": "user", "content": "hi"}]], torch.device("cpu"), 4))
    assert model.asked["eos_token_id"] == renderer.stop_ids and len(renderer.stop_ids) == 2
    model.asked = {}
    generate(model, renderer, [{"role": "user", "content": "hi"}], Settings(), torch.device("cpu"))
    assert model.asked["eos_token_id"] == renderer.stop_ids


def test_a_tokenizer_the_renderer_cannot_use_stops_the_start_in_one_line() -> None:
    """A slow (sentencepiece-only) tokenizer has no character offsets: the engine refuses
    to start with what to do (StartRefused: one line, `realm status` says "would not start")."""
    from types import SimpleNamespace

    from engine.protocol.config import StartRefused

    with pytest.raises(StartRefused, match=r"tokenizer\.json"):
        ChatRenderer(SimpleNamespace(is_fast=False, chat_template="x"))


def test_an_answer_the_template_trims_is_still_trained(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """Llama 3's template trims every turn: an answer with a trailing newline (as many data
    sets have) was "not found in the rendered text" and its row dropped."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = LLAMA3_STYLE
    renderer = ChatRenderer(tokenizer)
    messages = [{"role": "user", "content": " Capital? "}, {"role": "assistant", "content": "Paris\n"}]
    assert trained_text(renderer, messages) == "Paris<|endoftext|>"
