"""Quest test data: good rows, the bad-file catalogue, and how to write quest files."""

from __future__ import annotations

import json
from pathlib import Path

CHAT = {"messages": [{"role": "user", "content": "1+1="}, {"role": "assistant", "content": "2"}]}


def chats(n: int) -> list[dict[str, object]]:
    """``n`` different chat rows (identical rows would be dropped as duplicates on arrival)."""
    return [
        {"messages": [{"role": "user", "content": f"{i}+1="}, {"role": "assistant", "content": str(i + 1)}]}
        for i in range(n)
    ]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def lines(*rows: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def answer_weighted(weight: float) -> dict[str, object]:
    """One exchange whose answer carries OpenAI's fine-tuning ``weight``."""
    return {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "weight": weight},
        ]
    }


BAD = {
    "binary junk": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1"),
    "not utf-8": (lines(CHAT).encode() + "é\n".encode("latin-1"), "line 2: not UTF-8"),
    "UTF-16 with a BOM (PowerShell's >)": (lines(CHAT).encode("utf-16"), "line 1: UTF-16 text"),
    "UTF-16 without a BOM": (lines(CHAT).encode("utf-16-be"), "line 1: UTF-16 text"),
    "empty": (b"", "empty"),
    "blank lines only": (b"\n\n  \n", "empty"),
    "truncated JSON on line 3": (lines(*chats(2)) + '{"messages": [{"role": "user"', "line 3: invalid JSON"),
    "no assistant turn": (
        lines(CHAT, {"messages": [{"role": "user", "content": "hi"}]}),
        "line 2: no assistant turn",
    ),
    "a comma after each row": (
        lines(CHAT).replace("\n", ",\n") * 2,
        "line 1: invalid JSON (Extra data at column 91): a comma after the row",
    ),
    "single quotes (a Python dict printed)": (
        "{'prompt': 'a', 'completion': 'b'}\n",
        "single quotes, as Python prints a dict",
    ),
    "plain text (notes, a README)": (
        "# Notes\nSome notes about training, kept as prose.\n",
        'line 1: invalid JSON (Expecting value at column 1): plain text, not JSON — text to learn as written goes in rows like {"text"',
    ),
    "rows encoded twice": (json.dumps(json.dumps(CHAT)) + "\n", "line 1: a row is JSON text inside a string"),
    "unknown keys only": (lines({"foo": 1, "bar": 2}), "line 1: no known format (keys: bar, foo)"),
    "not an object": (lines([1, 2]), "line 1: a row must be a JSON object"),
    "bad role": (
        lines({"messages": [{"role": "wizard", "content": "x"}]}),
        "line 1: messages[0] needs a role",
    ),
    "empty answer": (lines({"prompt": "a", "completion": "  "}), "no row can train; line 1: an empty answer"),
    "every answer empty, in three formats": (
        lines(
            {"text": ""},
            {"instruction": "a", "output": " "},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
        ),
        "no row can train; line 1: an empty answer (3 rows, all dropped: dropped 3 rows, an empty answer: line 1, 2, 3)",
    ),
    "tool turn": (
        lines({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]}),
        "line 1: messages[1] needs a role",
    ),
    "tool call": (
        lines(
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": None, "tool_calls": [{"type": "function"}]},
                ]
            }
        ),
        "line 1: messages[1] calls a tool; tool calls and tool turns cannot train",
    ),
    "image part": (
        lines({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
        "line 1: messages[0].content[0] is not a text part",
    ),
    "weight that is not 0 or 1": (lines(answer_weighted(0.5)), "line 1: messages[1].weight must be 0 or 1"),
    "every answer of weight 0": (lines(answer_weighted(0)), "line 1: every assistant turn has weight 0"),
    "preference pair": (lines({"prompt": "a", "chosen": "b", "rejected": "c"}), "line 1: a preference pair"),
    "array row without an answer": (
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c"}\n]',
        "line 3: no known format",
    ),
    "array not closed": ('[\n  {"text": "a"},\n', "line 3: the JSON array ends without its closing ]"),
    "array missing a comma": ('[{"text": "a"}\n {"text": "b"}]', "line 2: invalid JSON (expected , or ]"),
    "array truncated in a row": ('[\n{"text": "a"},\n{"text": ', "line 3: invalid JSON"),
    "text after the array": ('[{"text": "a"}]\n{"text": "b"}\n', "line 2: text after the JSON array"),
    "array of numbers": ("[1, 2]", "line 1: a row must be a JSON object, not int"),
    "one pretty-printed object": (
        '{\n  "version": 1,\n  "data": [{"text": "a"}]\n}\n',
        "line 1: the file is one JSON object over 4 lines, not rows: give one object per line "
        "(JSON lines) or a JSON array of objects (its rows may be the list under 'data'",
    ),
}


ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"Greet guest {i}"},
            {"role": "assistant", "content": f"Welcome, guest {i}!"},
        ]
    }
    for i in range(24)
]


def quest_text(rows: list[dict[str, object]], **header: object) -> str:
    head = json.dumps({"quest": header}) + "\n" if header else ""
    return head + "".join(json.dumps(r) + "\n" for r in rows)
