"""What `realm serve` makes of other clients' chat requests: every field honoured or
refused by name, and stop sequences cut the reply the way OpenAI's do."""

from __future__ import annotations

from typing import Any

import pytest

from engine.oracle.chat_request import RequestError, StopFilter, read_chat

USER = [{"role": "user", "content": "hi"}]


def test_a_full_request_from_another_client_is_read() -> None:
    body = {
        "model": "dio@latest",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "c"},
        ],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_completion_tokens": 20,
        "max_tokens": 99,  # the newer name wins, as in OpenAI's API
        "seed": 3,
        "stop": "\n",
        "n": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "someone",  # fields that change nothing are fine
        "presence_penalty": 0.5,  # a knob we do not have: ignored, as other servers do
        "logprobs": False,
        "response_format": {"type": "text"},  # plain text is what DIO gives anyway
        "tools": [{"type": "function", "function": {"name": "f"}}],  # offered, not required
    }
    asked = read_chat(body, default_max_tokens=64)
    assert [m["role"] for m in asked.messages] == ["system", "user", "assistant", "user"]
    assert asked.messages[1]["content"] == "ab" and asked.messages[2]["content"] == ""
    s = asked.settings
    assert (s.temperature, s.top_p, s.max_new_tokens, s.seed, s.stop) == (0.7, 0.9, 20, 3, ("\n",))
    assert asked.stream and asked.usage_chunk
    plain = read_chat({"model": "dio", "messages": USER}, default_max_tokens=64)
    assert plain.settings.max_new_tokens == 64 and plain.settings.stop == () and not plain.stream


@pytest.mark.parametrize(
    ("change", "param", "said"),
    [
        ({"model": None}, "model", "model is required"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages", "messages[0]: the role must be"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages", "only text"),
        ({"messages": [*USER, {"role": "assistant", "content": "x"}]}, "messages", "last message"),
        ({"n": 2}, "n", "n must be 1"),
        ({"logprobs": True}, "logprobs", "not served"),
        ({"tools": [{"type": "function"}], "tool_choice": "required"}, "tool_choice", "tool calls"),
        ({"response_format": {"type": "json_object"}}, "response_format", "JSON mode is not served"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format", "JSON mode"),
        ({"temperature": 5}, "temperature", "temperature must be 0..2"),
        ({"temperature": "hot"}, "temperature", "must be a number"),
        ({"top_p": 0}, "top_p", "above 0"),
        ({"max_tokens": 0}, "max_tokens", "max_tokens must be 1..4,096"),
        ({"max_tokens": 2.5}, "max_tokens", "whole number"),
        ({"seed": -1}, "seed", "seed must be"),
        ({"stop": ["a", ""]}, "stop", "non-empty strings"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "up to 4"),
        ({"stream": "yes"}, "stream", "true or false"),
        ({"stream": True, "stream_options": "usage"}, "stream_options", "an object"),
        ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options", "true or false"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "only for stream: true"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(change: dict[str, Any], param: str, said: str) -> None:
    with pytest.raises(RequestError, match=said.replace("[", r"\[").replace("]", r"\]")) as refused:
        read_chat({"model": "dio", "messages": USER, **change}, default_max_tokens=64)
    assert refused.value.param == param


def test_stop_sequences_cut_the_reply_even_across_streamed_pieces() -> None:
    text = "The answer is 42.\nUser: more"
    assert StopFilter(("\nUser:",)).cut(text) == "The answer is 42."
    assert StopFilter(("zz", "42")).cut(text) == "The answer is "  # the earliest stop wins
    assert StopFilter(("nope",)).cut(text) == text
    assert StopFilter(()).cut(text) == text
    for size in (1, 2, 3, 5, 7):  # any split into pieces sends the same words, never a stop's start
        stops = StopFilter(("\nUser:",))
        sent = []
        for i in range(0, len(text), size):
            sent.append(stops.feed(text[i : i + size]))
            assert "\n" not in "".join(sent)
        sent.append(stops.flush())
        assert "".join(sent) == "The answer is 42." and stops.stopped
    held = StopFilter(("ab",))
    assert held.feed("xxa") == "xx" and held.feed("c") == "ac" and held.flush() == ""
    assert held.feed("a") == "" and held.flush() == "a" and not held.stopped
