"""Crash-safe file writes: write beside, fsync, rename, fsync the folder; and reading back
a file of the hero's that may have been damaged without losing it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def move_aside(path: Path) -> Path:
    """Keep an unreadable file beside the new one, under a name that says why."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    path.rename(target)
    return target


def read_json_kept(path: Path) -> tuple[Any, str | None]:
    """(the file's JSON, None), or (None, a warning) for a file that cannot be read as
    JSON: it is renamed ``NAME.corrupt-DATE`` (kept, never deleted) so the caller can start
    that state afresh instead of failing to start. A missing file is (None, None)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        aside = move_aside(path)
        return None, f"{path.name} could not be read ({exc}); it is kept as {aside.name} and started afresh"
