"""A user's file of JSON rows: JSON lines, or one JSON array of objects (the shape
Alpaca's own data and many exports come in), UTF-8 (a BOM is fine), gzip, bzip2 or xz
compressed or not. Each row comes with the line it starts on, so every refusal can name
it. Quests and eval suites read their files through this.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MAX_LINE_BYTES = 1_000_000  # one row; a larger line is refused, not parsed
MAX_FILE_BYTES = 2_000_000_000


class RowError(ValueError):
    """The file is not JSON rows; the message starts with the line (``line 3: …``)."""


def read_user_file(path: Path, noun: str) -> tuple[bytes, str]:
    """(the file's bytes as they are on disk, its text: decompressed and decoded), or
    RowError saying why not; ``noun`` names what the file is ("quest", "eval suite")."""
    data = _read_bytes(path, noun)
    return data, _decode(_decompressed(data, noun), noun)


# Tables people export data sets as: refused like any file that is not JSON rows, with
# the one line that converts them.
TABLE_FORMATS = {".csv": "CSV", ".tsv": "TSV", ".parquet": "Parquet", ".arrow": "Arrow", ".xlsx": "Excel"}


PLAIN_TEXT = ": plain text, not JSON"


def table_hint(path: Path, refusal: str, nouns: str) -> str:
    """What to add to a refusal of a table export (a .csv, .parquet… that is not JSON
    rows): how pandas writes JSON lines; "" for any other file or refusal."""
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None or not refusal.startswith("line "):
        return ""
    return (
        f" — {kind} is not read: {nouns} are JSON lines (pandas writes them with "
        "df.to_json(path, orient='records', lines=True))"
    )


# Data sets often ship compressed (data.jsonl.gz); known by their first bytes, not the name.
COMPRESSED: dict[bytes, Callable[[io.BytesIO], io.BufferedIOBase]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw),
    b"BZh": bz2.BZ2File,
    b"\xfd7zXZ\x00": lzma.LZMAFile,
}


def _read_bytes(path: Path, noun: str) -> bytes:
    try:
        info = path.stat()  # follows links: a loop raises here
    except OSError as exc:
        raise RowError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise RowError(f"{path.name} is a folder, not a file: drop the files in it (each file is a {noun})")
    if not stat.S_ISREG(info.st_mode):
        raise RowError(f"{path.name} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise RowError(
            f"{path.name} is {info.st_size:,} bytes; {noun} files over {MAX_FILE_BYTES:,} are refused"
        )
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        return f.read()


def _decompressed(data: bytes, noun: str) -> bytes:
    """The file's bytes, gunzipped (or bunzipped, unxz'd) when it is compressed; at most
    MAX_FILE_BYTES of them, so a small file cannot expand without bound."""
    opener = next((kind for magic, kind in COMPRESSED.items() if data.startswith(magic)), None)
    if opener is None:
        return data
    try:
        with opener(io.BytesIO(data)) as f:
            out = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise RowError(f"line 1: a compressed file that cannot be read ({exc})") from None
    if len(out) > MAX_FILE_BYTES:
        raise RowError(f"it expands past {MAX_FILE_BYTES:,} bytes; {noun} files over that are refused")
    return out


def _decode(data: bytes, noun: str) -> str:
    """UTF-8 text (a BOM is fine), or RowError naming the line of the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"{\x00", b"\x00{", b"[\x00", b"\x00[")):
        # What Windows PowerShell's `>` and Notepad's "Unicode" write.
        raise RowError(f"line 1: UTF-16 text; {noun} files are UTF-8: save the file as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RowError(f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise RowError(f"line {line}: binary data (NUL byte), not JSON lines")
    return text


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
        raw = line.removesuffix("\r").removeprefix("\ufeff")  # files joined with `cat` keep each BOM
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
        raise RowError(
            f"line {number}: invalid JSON ({exc.msg} at column {exc.colno}){_hint(raw, exc)}"
        ) from None
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


def _hint(raw: str, exc: json.JSONDecodeError) -> str:
    """What usually made a line invalid, when it is one of the usual slips."""
    if exc.msg == "Extra data" and raw[exc.pos :].strip() == ",":
        return ": a comma after the row; JSON lines end each row with the line, no comma"
    if raw.lstrip().startswith("{'"):
        return ": single quotes, as Python prints a dict; write each row with json.dumps"
    if exc.msg == "Expecting value" and exc.pos == len(raw) - len(raw.lstrip()):  # prose, a header, a log
        return PLAIN_TEXT
    return ""


def _object(row: Any, number: int) -> dict[str, Any]:
    if isinstance(row, str) and row.lstrip().startswith("{"):
        raise RowError(
            f"line {number}: a row is JSON text inside a string (encoded twice): write the object "
            "itself (json.dumps(row), not json.dumps(json.dumps(row)))"
        )
    if not isinstance(row, dict):
        raise RowError(f"line {number}: a row must be a JSON object, not {type(row).__name__}")
    return row
