"""Text from users' files, made safe to store and to show.

Names and reasons reach terminals (the game, `realm quest list`, logs) and file
systems. ``printable`` turns anything a terminal would act on (escape codes and other
control characters, bidi overrides, lone surrogates from an undecodable file name)
into visible escapes; ``safe_name`` makes a file name the engine can store beside its
own files: valid UTF-8, no control characters, not hidden, and short enough that its
sidecar names fit any file system. Pure Python; both sides use it.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata

MAX_NAME_BYTES = 120  # leaves room for ".NAME.quest.json" and "NAME.reason.txt" in 255


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") or ch == "\ufffd"


def printable(text: str, limit: int = 4000) -> str:
    """``text`` with every unsafe character written as an escape (\\x1b, \\u202e…)."""
    if len(text) > limit:
        text = text[:limit] + "…"
    if not any(_unsafe(ch) for ch in text):
        return text
    return "".join(
        ch.encode("unicode_escape", "backslashreplace").decode("ascii") if _unsafe(ch) else ch for ch in text
    )


def safe_name(name: str) -> str:
    """A file name safe to keep: unsafe characters become "_", leading dots go, and a
    name over MAX_NAME_BYTES is cut, keeping its extension and a short hash of the
    original (so two long names stay apart)."""
    raw = os.fsencode(name)  # a name that was not UTF-8 comes back as its bytes
    text = raw.decode("utf-8", "replace")
    text = "".join("_" if _unsafe(ch) or ch in "/\\" else ch for ch in text).lstrip(". ") or "quest"
    if len(text.encode()) <= MAX_NAME_BYTES:
        return text
    stem, dot, suffix = text.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = text, ""
    else:
        suffix = "." + suffix
    tag = "-" + hashlib.sha1(raw).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(suffix.encode()) - len(tag)
    cut = stem.encode()[:room].decode("utf-8", "ignore")
    return f"{cut}{tag}{suffix}"


def counted(n: int, noun: str) -> str:
    """``n`` and its noun, plural unless one: "1 row", "2,500 rows"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def duration(seconds: float) -> str:
    """'45s', '12m', '3h05m', '2d04h': short enough for the hero card and a progress line."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


_SHORT_LOOT = re.compile(r"^(?:step-)?(\d+)(-r\d+)?$")


def loot_name(step: int) -> str:
    """The folder name of the loot saved at ``step``."""
    return f"step-{step:06d}"


def canonical_loot(name: str) -> str:
    """A loot as typed (``200``, ``step-200``, ``200-r1``) as the vault names it
    (``step-000200``, ``step-000200-r1``); any other name as given (``latest``, ``best-bin``)."""
    wanted = name.strip()
    short = _SHORT_LOOT.match(wanted)
    return loot_name(int(short.group(1))) + (short.group(2) or "") if short else wanted
