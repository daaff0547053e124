"""A user's file of JSON rows: JSON lines, or one JSON array of objects (the shape
Alpaca's own data and many exports come in). Each row comes with the line it starts on,
so every refusal can name it. Quests and eval suites read their files through this.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

MAX_LINE_BYTES = 1_000_000  # one row; a larger line is refused, not parsed


class RowError(ValueError):
    """The file is not JSON rows; the message starts with the line (``line 3: …``)."""


def json_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, parsed row) for each row: JSON lines, or one JSON array of rows
    (the shape Alpaca's own files and many exports come in)."""
    body = text.lstrip()
    if body.startswith("["):
        yield from _array_rows(text, len(text) - len(body))
        return
    # Lines end at \n (and \r\n) only: str.splitlines() would also cut at U+2028, U+2029
    # and U+0085, which JSON allows inside a string (text scraped from the web has them).
    for number, line in enumerate(text.split("\n"), 1):
        raw = line.removesuffix("\r")
        if not raw.strip():
            continue
        size = len(raw.encode("utf-8"))
        if size > MAX_LINE_BYTES:
            raise RowError(f"line {number}: {size:,} bytes; rows over {MAX_LINE_BYTES:,} are refused")
        try:
            row = _loads(raw, number)
        except RowError:
            _refuse_one_object(text)
            raise
        yield number, _object(row, number)


def _refuse_one_object(text: str) -> None:
    """A pretty-printed JSON object (one record, or {"data": [...]}) fails as JSON lines on
    its first line; say what it is instead of "invalid JSON at line 1"."""
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError):
        return
    if isinstance(whole, dict):
        lists = [key for key, value in whole.items() if isinstance(value, list)]
        hint = f" (its rows may be the list under {lists[0]!r}: save that list as the file)" if lists else ""
        raise RowError(
            f"line 1: the file is one JSON object over {len(text.rstrip().splitlines())} lines, not rows: "
            f"give one object per line (JSON lines) or a JSON array of objects{hint}"
        )


def _loads(raw: str, number: int) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RowError(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise RowError(f"line {number}: JSON nested too deeply to be a training row") from None


def _array_rows(text: str, pos: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """The items of a file that is one JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    line, counted = 1, 0  # line number at text[counted]; counted forward only (no rescans)

    def line_at(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    pos = _skip_space(text, pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        if pos >= len(text):
            raise RowError(f"line {line_at(len(text))}: the JSON array ends without its closing ]")
        number = line_at(pos)
        try:
            row, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise RowError(f"line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise RowError(f"line {number}: JSON nested too deeply to be a training row") from None
        if end - pos > MAX_LINE_BYTES // 4 and len(text[pos:end].encode("utf-8")) > MAX_LINE_BYTES:
            raise RowError(f"line {number}: a row over {MAX_LINE_BYTES:,} bytes is refused")
        yield number, _object(row, number)
        pos = _skip_space(text, end)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
            continue
        if text.startswith("]", pos):
            rest = _skip_space(text, pos + 1)
            if rest < len(text):
                raise RowError(f"line {line_at(rest)}: text after the JSON array's closing ]")
            return
        if pos >= len(text):
            continue  # reported at the top of the loop
        where = line_at(pos)
        raise RowError(f"line {where}: invalid JSON (expected , or ] after a row of the array)")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _object(row: Any, number: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise RowError(f"line {number}: a row must be a JSON object, not {type(row).__name__}")
    return row
