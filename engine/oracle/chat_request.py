"""An OpenAI chat-completions request, checked field by field, and the stop sequences
applied to what comes back. Other tools' clients send more than our own does (``n``,
``stop``, ``developer`` turns, content parts, ``null`` assistant content). A field that
shapes the reply (``n``, ``logprobs``, a required tool call, JSON mode) is honoured or refused with a
400 that names it; knobs that only tune sampling and that we do not have (penalties,
``logit_bias``, ``user``) are ignored, as many OpenAI-compatible servers do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.protocol.config import MAX_REPLY_TOKENS

if TYPE_CHECKING:  # chat.py loads torch; `python -m engine.oracle.serve --help` should not wait for it
    from engine.oracle.chat import Settings

MAX_STOPS = 4  # as OpenAI allows
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class RequestError(ValueError):
    """A 400: ``str(exc)`` says what is wrong; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    settings: Settings
    stream: bool
    # stream_options.include_usage: the usage comes in a chunk of its own, after the
    # finish, with no choices (OpenAI's rule; clients that ask for it read it there).
    usage_chunk: bool = False


def read_chat(body: Any, default_max_tokens: int) -> ChatRequest:
    """The request, or RequestError naming the first field that cannot be honoured."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object with model and messages")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model is required: one of GET /v1/models", "model")
    messages = read_messages(body.get("messages"))
    if body.get("n", 1) not in (1, None):
        raise RequestError("n must be 1: one choice per request", "n")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise RequestError("logprobs are not served", "logprobs")
    if body.get("tools") and body.get("tool_choice") not in (None, "none", "auto"):
        raise RequestError("tool calls are not served: DIO answers in text", "tool_choice")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        # JSON mode or a schema promises a shape we cannot constrain decoding to: a client
        # that relies on it must hear so, not parse free text.
        raise RequestError(
            'response_format must be {"type": "text"}: JSON mode is not served', "response_format"
        )
    temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise RequestError("top_p must be above 0", "top_p")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, key, default_max_tokens, 1, MAX_REPLY_TOKENS)
    seed = _integer(body, "seed", 0, 0, 2**31 - 1)
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise RequestError("stream must be true or false", "stream")
    usage_chunk = read_stream_options(body.get("stream_options"), stream)
    from engine.oracle.chat import Settings

    settings = Settings(temperature, top_p, max_tokens, seed, read_stop(body.get("stop")))
    return ChatRequest(model, messages, settings, stream, usage_chunk)


def read_stream_options(options: Any, stream: bool) -> bool:
    """Whether the stream ends with a usage chunk (``include_usage``)."""
    if options is None:
        return False
    if not isinstance(options, dict):
        raise RequestError("stream_options must be an object", "stream_options")
    if not stream:
        raise RequestError("stream_options is only for stream: true", "stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise RequestError("stream_options.include_usage must be true or false", "stream_options")
    return include


def read_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list of {role, content}", "messages")
    out = []
    for i, message in enumerate(messages):
        given = message.get("role") if isinstance(message, dict) else None
        role = ROLES.get(given) if isinstance(given, str) else None
        if role is None:
            raise RequestError(
                f"messages[{i}]: the role must be system, developer, user or assistant (tools are not served)",
                "messages",
            )
        out.append({"role": role, "content": content_text(message.get("content"), i)})
    if out[-1]["role"] != "user":
        raise RequestError("the last message must be the user's", "messages")
    return out


def content_text(content: Any, index: int) -> str:
    """A string, null (an assistant turn that only called tools), or a list of parts of
    which only text can be read."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RequestError(f"messages[{index}]: only text content parts can be read", "messages")
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f"messages[{index}].content must be text or a list of text parts", "messages")


def read_stop(stop: Any) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else None
    if stop is None:
        return ()
    if stops is None or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise RequestError(f"stop must be a string or a list of up to {MAX_STOPS} non-empty strings", "stop")
    return tuple(stops)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{key} must be a number", key)
    if not low <= value <= high:
        raise RequestError(f"{key} must be {low:g}..{high:g}, not {value}", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{key} must be a whole number", key)
    if not low <= value <= high:
        raise RequestError(f"{key} must be {low:,}..{high:,}, not {value:,}", key)
    return value


class StopFilter:
    """Cuts a reply at the first stop sequence, as OpenAI does (the sequence itself is
    not returned). Fed piece by piece while streaming, it holds back only the tail that
    could still be the start of a stop sequence."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """What may be sent now."""
        if self.stopped:
            return ""
        text = self.held + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self.held = True, ""
            return text[:cut]
        keep = max((len(s) - 1 for s in self.stops), default=0)
        safe = max(len(text) - keep, 0)
        while safe < len(text) and not any(s.startswith(text[safe:]) for s in self.stops):
            safe += 1  # hold back only a tail that a stop sequence really starts with
        self.held = text[safe:]
        return text[:safe]

    def flush(self) -> str:
        """The rest, once the reply is complete."""
        rest, self.held = ("" if self.stopped else self.held), ""
        return rest

    def cut(self, text: str) -> str:
        """A whole reply at once."""
        return self.feed(text) + self.flush()
