"""The log book: what each line of events.jsonl is about, and reading it back.

Every note the engine writes gets a kind (``LOG_KINDS``), given by the caller where it
knows, else read from the words the engine itself writes. Rows from before kinds existed
are classified the same way when read, so an old hero's log book has its filters too.
"""

from __future__ import annotations

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from engine.store.history import tail_rows

# (kind, phrases): the first whose phrase starts (or, for "in", appears in) the text wins.
_STARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("level", ("LEVEL UP!", "SKILL UP!")),
    ("crash", ("The engine died", "The engine stopped with an error", "The ledger could not")),
    ("achievement", ("Achievement unlocked",)),
    ("campaign", ("CAMPAIGN", "Campaign", "campaign")),
    ("watchdog", ("Watchdog", "WATCHDOG", "Spike")),
    ("quest", ("Quest", "Sparring", "DIO spars")),
    ("eval", ("Eval", "Evaluating", "Suite", "suite")),
    ("loot", ("Loot!", "pruned loot", "Pinned", "Unpinned", "Deleted", "Rewound", "rewound", "Exported")),
)
_WITHIN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("watchdog", ("rolls back from step", "spike")),
    ("loot", (" pinned", " unpinned", " deleted", "pruned ", "training continues from")),
    (
        "run",
        (
            " wakes ",
            "Memory plan",
            "Settings:",
            " rests at step",
            "leaves step",
            "Paused at step",
            "Resumed at step",
        ),
    ),
)
ROWS_BYTES = 4_000_000  # the tail of events.jsonl the log book reads (~30k rows)


def kind_of(text: str) -> str:
    for kind, phrases in _STARTS:
        if text.startswith(phrases):
            return kind
    for kind, phrases in _WITHIN:
        if any(phrase in text for phrase in phrases):
            return kind
    return "other"


def read_log(save: SaveDir, limit: int) -> p.LogRead:
    """The newest ``limit`` rows, oldest first. A half-written last line (kill -9) is
    skipped by tail_rows."""
    if not save.events.exists():
        return p.LogRead(rows=(), total=0)
    rows = [r for r in tail_rows(save.events, ROWS_BYTES) if isinstance(r.get("text"), str)]
    lines = tuple(
        p.LogLine(
            text=r["text"],
            level=str(r.get("level", "info")),
            kind=r["kind"] if r.get("kind") in p.LOG_KINDS else kind_of(r["text"]),
            step=int(r.get("step") or 0),
            time=float(r.get("time") or 0.0),
        )
        for r in rows[-limit:]
    )
    return p.LogRead(rows=lines, total=len(rows))
