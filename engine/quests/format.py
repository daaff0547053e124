"""Quest files: intake validation, deny by default.

A quest file is JSON lines, or one JSON array of rows (line numbers still point into the
file), plain or gzip/bzip2/xz compressed. It is accepted only when EVERY row maps to one known spec:

    chat_sft_v1    {"messages": [{"role": system|user|assistant, "content": str}, ...]}
                   with at least one assistant turn
    syllo_v1       an SY puzzle with its solution (the reference system's SY rows)
    completion_v1  {"text": str}  or  {"prompt": str, "completion": str}

Common shapes are recognised and converted, each with a one-line notice: OpenAI-style
``messages`` (that is chat_sft_v1; content may be a list of text parts), ShareGPT
``conversations`` (``from``/``value``), TRL's chat ``prompt``/``completion`` (lists of
turns), Gemini's ``contents`` (``parts``, ``systemInstruction``), Alpaca
(``instruction``/``input``/``output``), Dolly (``instruction``/``context``/``response``),
``prompt``/``response``, ``question``/``answer``, ``query``/``response``, ``input``/``output``,
and the reference BIN chat rows (``user_prompt``/``assistant_response``). Every rejection
names the line and the problem. An empty answer is not a format problem: that row alone is
dropped (engine/quests/checks.py), in every shape.
An optional first row ``{"quest": {"epochs": 2, "checks": "deep", "priority": "high"}}``
sets the quest's own settings (a file dropped in the inbox has no other way to say them).
Pure Python: the engine's intake and `realm quest` use it alike.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.protocol.config import QUEST_CHECKS, QUEST_PRIORITIES
from engine.protocol.names import counted, printable
from engine.quests.rows import PLAIN_TEXT, RowError, json_rows, read_user_file, table_hint

ROLES = ("system", "user", "assistant")
TURN_ROLES = {
    "system": "system",
    "developer": "system",  # OpenAI's newer name for the system turn
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",  # Gemini's and Gemma's name for the assistant
}
OTHER_ROLE_NAMES = ", ".join(name for name in TURN_ROLES if name not in ROLES)
# An assistant turn's thinking, as reasoning data sets ship it beside "content": not trained
# (a chat template renders it its own way, or not at all), and said so in a notice.
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


class QuestRejected(Exception):
    """The file is refused; ``str(exc)`` says where and why (made printable: a reason
    may quote the file, and it is shown in terminals)."""

    def __init__(self, reason: str) -> None:
        super().__init__(printable(reason))
        self.quest_name: str | None = None  # the name it was kept under in failed/, if any


@dataclass
class QuestFile:
    """An accepted quest: every row as chat messages (completion rows keep their text)."""

    rows: list[dict[str, Any]]
    specs: Counter[str] = field(default_factory=Counter)  # spec -> rows
    notices: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # from the header row
    lines: list[int] = field(default_factory=list)  # each row's line number in the file
    digest: str = ""  # sha256 of the file's bytes


HEADER_KEYS = {"epochs": int, "checks": str, "priority": str}
MAX_EPOCHS = 100


def read_quest(path: Path) -> QuestFile:
    """Validate a quest file; raise QuestRejected naming the first problem."""
    try:
        return _read_quest(path)
    except QuestRejected as exc:
        hint = table_hint(path, str(exc), "quests")
        if not hint and str(exc).startswith("line 1: ") and str(exc).endswith(PLAIN_TEXT):
            hint = ' — text to learn as written goes in rows like {"text": "…"}, one per line (json.dumps each passage)'
        raise QuestRejected(f"{exc}{hint}") from None


def _read_quest(path: Path) -> QuestFile:
    try:
        data, text = read_user_file(path, "quest")
    except RowError as exc:
        raise QuestRejected(str(exc)) from None
    quest = QuestFile(rows=[], digest=hashlib.sha256(data).hexdigest())
    converted: Counter[str] = Counter()
    reasoning = 0
    try:  # rows are checked as they are read: the first problem in the file is the one named
        for number, row in json_rows(text):
            if not quest.rows and not quest.settings and set(row) == {"quest"}:
                quest.settings = read_header(row["quest"], number)
                continue
            spec, source, normalised = to_spec(row, number)
            reasoning += reasons_aside(row)
            quest.rows.append(normalised)
            quest.lines.append(number)
            quest.specs[spec] += 1
            if source != spec:
                converted[source] += 1
    except RowError as exc:
        raise QuestRejected(str(exc)) from None
    if not quest.rows:
        raise QuestRejected("the file is empty (no JSON rows)")
    for source, count in converted.items():
        quest.notices.append(f"converted {counted(count, f'{source} row')} to {_target(source)}")
    if reasoning:
        quest.notices.append(
            f"{counted(reasoning, 'row')} with an assistant's reasoning beside its content "
            f"({'/'.join(REASONING_KEYS)}): only the content trains; to train the reasoning, put it "
            "in the content, in the think tags your model's chat template uses"
        )
    return quest


def read_header(header: Any, number: int) -> dict[str, Any]:
    where = f"line {number} (quest header)"
    if not isinstance(header, dict):
        raise QuestRejected(f"{where}: 'quest' must be an object of settings")
    for key, value in header.items():
        kind = HEADER_KEYS.get(key)
        if kind is None:
            raise QuestRejected(f"{where}: unknown setting '{key}' (known: {', '.join(HEADER_KEYS)})")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise QuestRejected(f"{where}: '{key}' must be {kind.__name__}")
    epochs = header.get("epochs", 1)
    if not 1 <= epochs <= MAX_EPOCHS:
        raise QuestRejected(f"{where}: epochs must be 1..{MAX_EPOCHS}, not {epochs}")
    if header.get("checks", "standard") not in QUEST_CHECKS:
        raise QuestRejected(f"{where}: checks must be standard or deep")
    if header.get("priority", "normal") not in QUEST_PRIORITIES:
        raise QuestRejected(f"{where}: priority must be high, normal or low")
    return dict(header)


def _target(source: str) -> str:
    return "completion_v1" if source == "prompt/completion" else "chat_sft_v1"


# Prompt/answer pairs under their usual names: (prompt key, answer key, the shape's name,
# an optional key whose text follows the prompt). First match wins.
PAIRS = (
    ("instruction", "output", "Alpaca", "input"),
    ("instruction", "response", "Dolly", "context"),
    ("user_prompt", "assistant_response", "BIN chat", None),
    ("prompt", "response", "prompt/response", None),
    ("question", "answer", "question/answer", None),
    ("query", "response", "query/response", None),  # MetaMathQA
    ("input", "output", "input/output", None),
)
KNOWN = (
    "messages, conversations, contents (Gemini), prompt/completion, text, instruction/output "
    "(Alpaca), instruction/response (Dolly), prompt/response, question/answer, query/response, "
    "input/output, or user_prompt/assistant_response"
)


def to_spec(row: dict[str, Any], number: int) -> tuple[str, str, dict[str, Any]]:
    """(spec, the shape it came in, the row as that spec) or QuestRejected."""
    where = f"line {number}"
    if "messages" in row:
        return "chat_sft_v1", "chat_sft_v1", {"messages": _messages(row["messages"], where, "messages")}
    if "conversations" in row:
        return (
            "chat_sft_v1",
            "ShareGPT",
            {"messages": _messages(row["conversations"], where, "conversations")},
        )
    if "contents" in row:
        return "chat_sft_v1", "Gemini", {"messages": _messages(_gemini_turns(row, where), where, "contents")}
    if "syllable_bank" in row and "prompt" in row and "solution" in row:
        solution = row["solution"] if isinstance(row["solution"], str) else json.dumps(row["solution"])
        prompt = _text(row["prompt"], where, "prompt")
        return (
            "syllo_v1",
            "syllo_v1",
            {"messages": [_turn("user", prompt), _turn("assistant", _text(solution, where, "solution"))]},
        )
    if "prompt" in row and "completion" in row:
        if isinstance(row["prompt"], list) and isinstance(row["completion"], list):  # TRL's chat shape
            turns = _messages(row["prompt"] + row["completion"], where, "prompt + completion")
            return "chat_sft_v1", "chat prompt/completion", {"messages": turns}
        prompt = _text(row["prompt"], where, "prompt")
        answer = _text(row["completion"], where, "completion")
        return "completion_v1", "prompt/completion", {"prompt": prompt, "completion": answer}
    for ask, reply, shape, extra_key in PAIRS:
        if ask in row and reply in row:
            prompt = _text(row[ask], where, ask)
            extra = row.get(extra_key) if extra_key else None
            if extra:
                prompt = f"{prompt}\n\n{_text(extra, where, extra_key or '')}"
            answer = _text(row[reply], where, reply)
            return "chat_sft_v1", shape, {"messages": [_turn("user", prompt), _turn("assistant", answer)]}
    if "text" in row:
        return "completion_v1", "completion_v1", {"text": _text(row["text"], where, "text")}
    keys = ", ".join(sorted(row)) or "none"
    if "chosen" in row and "rejected" in row:
        raise QuestRejected(
            f"{where}: a preference pair (keys: {keys}); quests train on demonstrations, "
            "not chosen/rejected pairs: keep the chosen answer as a messages row"
        )
    raise QuestRejected(f"{where}: no known format (keys: {keys}); expected {KNOWN}")


def _messages(messages: Any, where: str, name: str) -> list[dict[str, Any]]:
    """Chat turns as {"role", "content"}: OpenAI-style ({"role", "content"}, content may be a
    list of text parts; an assistant turn's ``weight`` 0 keeps it out of the loss, as in
    OpenAI's fine-tuning files) or ShareGPT-style ({"from", "value"}, human/gpt)."""
    if not isinstance(messages, list) or not messages:
        raise QuestRejected(f"{where}: '{name}' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        turn = f"{name}[{i}]"
        if not isinstance(message, dict):
            raise QuestRejected(f"{where}: {turn} must be an object with a role and content")
        role_key, content_key = ("from", "value") if "from" in message else ("role", "content")
        given = message.get(role_key)
        role = TURN_ROLES.get(given) if isinstance(given, str) else None
        if role is None:
            raise QuestRejected(
                f"{where}: {turn} needs a {role_key} of {', '.join(ROLES)} (or {OTHER_ROLE_NAMES}), "
                f"not {given!r}; tool and function turns cannot train"
            )
        if message.get("tool_calls") or message.get("function_call"):
            raise QuestRejected(
                f"{where}: {turn} calls a tool; tool calls and tool turns cannot train "
                "(keep the rows whose turns are text)"
            )
        out.append(_turn(role, _content(message.get(content_key), where, f"{turn}.{content_key}")))
        if "weight" in message and role == "assistant":
            if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
                raise QuestRejected(f"{where}: {turn}.weight must be 0 or 1 (OpenAI's fine-tuning files)")
            if message["weight"] == 0:  # shown to DIO as context, not learned
                out[-1]["weight"] = 0
    if not any(m["role"] == "assistant" for m in out):
        raise QuestRejected(f"{where}: no assistant turn (nothing to learn from)")
    if not any(m["role"] == "assistant" and m.get("weight") != 0 for m in out):
        raise QuestRejected(f"{where}: every assistant turn has weight 0 (nothing to learn from)")
    return out


def _gemini_turns(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Gemini / Vertex AI tuning rows ({"contents": [{"role": "user" or "model", "parts":
    [{"text"}]}], "systemInstruction": {"parts": […]}}) as role/content turns."""
    contents = row["contents"]
    if not isinstance(contents, list) or not contents:
        raise QuestRejected(f"{where}: 'contents' must be a non-empty list")
    turns: list[dict[str, Any]] = []
    system = row.get("systemInstruction", row.get("system_instruction"))
    if system is not None:
        turns.append({"role": "system", "content": _parts(system, where, "systemInstruction")})
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise QuestRejected(f"{where}: contents[{i}] must be an object with a role and parts")
        turns.append({"role": content.get("role"), "content": _parts(content, where, f"contents[{i}]")})
    return turns


def _parts(content: Any, where: str, name: str) -> str:
    """A Gemini turn's text: its text parts, joined as Gemini joins them (no separator)."""
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise QuestRejected(f"{where}: {name}.parts must be a non-empty list of text parts")
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise QuestRejected(f"{where}: {name}.parts[{j}] is not a text part (only text can train)")
    return "".join(part["text"] for part in parts)


def reasons_aside(row: dict[str, Any]) -> bool:
    """Whether an assistant turn of ``row`` carries its thinking beside its content."""
    turns = row.get("messages") or row.get("conversations") or []
    if isinstance(row.get("completion"), list):
        turns = row["completion"]
    return isinstance(turns, list) and any(
        isinstance(t, dict) and any(isinstance(t.get(k), str) and t[k].strip() for k in REASONING_KEYS)
        for t in turns
    )


def _content(value: Any, where: str, name: str) -> str:
    """A turn's text; OpenAI's list of content parts is joined when every part is text."""
    if isinstance(value, list):
        parts = []
        for j, part in enumerate(value):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise QuestRejected(f"{where}: {name}[{j}] is not a text part (only text can train)")
            parts.append(part["text"])
        value = "\n".join(parts)
    return _text(value, where, name)


def _turn(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise QuestRejected(f"{where}: '{name}' must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON allows "\ud800"; text cannot hold it
        bad = value[exc.start : exc.end]
        raise QuestRejected(f"{where}: '{name}' is not valid Unicode (a lone surrogate {bad!r})") from None
    return value
