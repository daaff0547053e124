"""Quest files: intake validation, deny by default.

A quest file is JSON lines. It is accepted only when EVERY row maps to one known spec:

    chat_sft_v1    {"messages": [{"role": system|user|assistant, "content": str}, ...]}
                   with at least one assistant turn
    syllo_v1       an SY puzzle with its solution (the reference system's SY rows)
    completion_v1  {"text": str}  or  {"prompt": str, "completion": str}

Common shapes are recognised and converted, each with a one-line notice: OpenAI-style
``messages`` (that is chat_sft_v1), ShareGPT ``conversations`` (``from``/``value``),
Alpaca (``instruction``/``input``/``output``), and the reference BIN chat rows
(``user_prompt``/``assistant_response``). Every rejection names the line and the problem.
An optional first row ``{"quest": {"epochs": 2, "checks": "deep", "priority": "high"}}``
sets the quest's own settings (a file dropped in the inbox has no other way to say them).
Pure Python: the engine's intake and `realm quest` use it alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.protocol.config import QUEST_CHECKS, QUEST_PRIORITIES
from engine.protocol.names import printable

MAX_LINE_BYTES = 1_000_000  # one training row; a larger line is refused, not read whole
MAX_FILE_BYTES = 2_000_000_000
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}


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
    data = _read_bytes(path)
    text = _decode(data)
    quest = QuestFile(rows=[], digest=hashlib.sha256(data).hexdigest())
    converted: Counter[str] = Counter()
    for number, raw in enumerate(text.splitlines(), 1):  # \r\n and \n alike
        if not raw.strip():
            continue
        if len(raw.encode("utf-8")) > MAX_LINE_BYTES:
            raise QuestRejected(
                f"line {number}: {len(raw.encode()):,} bytes; rows over {MAX_LINE_BYTES:,} are refused"
            )
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise QuestRejected(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise QuestRejected(f"line {number}: JSON nested too deeply to be a training row") from None
        if not isinstance(row, dict):
            raise QuestRejected(f"line {number}: a row must be a JSON object, not {type(row).__name__}")
        if not quest.rows and not quest.settings and set(row) == {"quest"}:
            quest.settings = read_header(row["quest"], number)
            continue
        spec, source, normalised = to_spec(row, number)
        quest.rows.append(normalised)
        quest.lines.append(number)
        quest.specs[spec] += 1
        if source != spec:
            converted[source] += 1
    if not quest.rows:
        raise QuestRejected("the file is empty (no JSON rows)")
    for source, count in converted.items():
        quest.notices.append(f"converted {count} {source} row(s) to {_target(source)}")
    return quest


def _decode(data: bytes) -> str:
    """UTF-8 text (a BOM is fine), or QuestRejected naming the line of the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise QuestRejected(f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise QuestRejected(f"line {line}: binary data (NUL byte), not JSON lines")
    return text


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


def _read_bytes(path: Path) -> bytes:
    try:
        info = path.stat()  # follows links: a loop raises here
    except OSError as exc:
        raise QuestRejected(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise QuestRejected(f"{path.name} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise QuestRejected(f"{path.name} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise QuestRejected(
            f"{path.name} is {info.st_size:,} bytes; quests over {MAX_FILE_BYTES:,} are refused"
        )
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return f.read()


def to_spec(row: dict[str, Any], number: int) -> tuple[str, str, dict[str, Any]]:
    """(spec, the shape it came in, the row as that spec) or QuestRejected."""
    where = f"line {number}"
    if "messages" in row:
        return "chat_sft_v1", "chat_sft_v1", {"messages": _messages(row["messages"], where)}
    if "conversations" in row:
        turns = row["conversations"]
        if not isinstance(turns, list):
            raise QuestRejected(f"{where}: 'conversations' must be a list")
        messages = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or turn.get("from") not in SHAREGPT_ROLES or "value" not in turn:
                raise QuestRejected(
                    f"{where}: conversations[{i}] needs 'from' (human/gpt/system) and 'value'"
                )
            messages.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]})
        return "chat_sft_v1", "ShareGPT", {"messages": _messages(messages, where)}
    if "instruction" in row and "output" in row:
        prompt = _text(row["instruction"], where, "instruction")
        extra = row.get("input") or ""
        if extra:
            prompt = f"{prompt}\n\n{_text(extra, where, 'input')}"
        answer = _answer(row["output"], where, "output")
        return "chat_sft_v1", "Alpaca", {"messages": [_turn("user", prompt), _turn("assistant", answer)]}
    if "user_prompt" in row and "assistant_response" in row:
        prompt = _text(row["user_prompt"], where, "user_prompt")
        answer = _answer(row["assistant_response"], where, "assistant_response")
        return "chat_sft_v1", "BIN chat", {"messages": [_turn("user", prompt), _turn("assistant", answer)]}
    if "syllable_bank" in row and "prompt" in row and "solution" in row:
        solution = row["solution"] if isinstance(row["solution"], str) else json.dumps(row["solution"])
        prompt = _text(row["prompt"], where, "prompt")
        return (
            "syllo_v1",
            "syllo_v1",
            {"messages": [_turn("user", prompt), _turn("assistant", _answer(solution, where, "solution"))]},
        )
    if "prompt" in row and "completion" in row:
        prompt = _text(row["prompt"], where, "prompt")
        answer = _answer(row["completion"], where, "completion")
        return "completion_v1", "prompt/completion", {"prompt": prompt, "completion": answer}
    if "text" in row:
        return "completion_v1", "completion_v1", {"text": _answer(row["text"], where, "text")}
    keys = ", ".join(sorted(row)) or "none"
    raise QuestRejected(
        f"{where}: no known format (keys: {keys}); expected messages, conversations, "
        "instruction/output, prompt/completion, text, or user_prompt/assistant_response"
    )


def _messages(messages: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise QuestRejected(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise QuestRejected(f"{where}: messages[{i}] needs a role of {', '.join(ROLES)}")
        out.append(_turn(message["role"], _text(message.get("content"), where, f"messages[{i}].content")))
    if not any(m["role"] == "assistant" for m in out):
        raise QuestRejected(f"{where}: no assistant turn (nothing to learn from)")
    return out


def _turn(role: str, content: str) -> dict[str, str]:
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


def _answer(value: Any, where: str, name: str) -> str:
    text = _text(value, where, name)
    if not text.strip():
        raise QuestRejected(f"{where}: '{name}' is empty")
    return text
