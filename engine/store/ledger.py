"""The ledger: a tinydb file of every loot (checkpoint) the hero has taken, its evals
and its finished quests.

tinydb's stock JSONStorage rewrites the file in place, so a kill mid-write could
corrupt it; this storage writes atomically. A ledger that cannot be read anyway (a
truncated copy, a stray edit) is moved aside, never deleted, and rebuilt: the vault
adopts every loot folder back from its own metadata.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from engine.store.atomic import move_aside, write_text

TABLES = ("loot", "evals", "quests")


class AtomicJSONStorage(Storage):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text) if text.strip() else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        write_text(self.path, json.dumps(data))


def check_readable(path: Path) -> None:
    """Raise ValueError when the ledger file exists but is not a ledger."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    if not text.strip():
        return  # empty: a fresh ledger (the folders say what loot exists)
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
        raise ValueError("not a tinydb document of tables")
    for table in data.values():
        if not all(isinstance(row, dict) for row in table.values()):
            raise ValueError("a table holds something other than rows")


class Ledger:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        """``read_only``: a reader beside the engine (`realm vault list`); an unreadable
        ledger raises ValueError instead of being moved aside (only the engine repairs)."""
        self.path = path
        self.moved_aside: Path | None = None  # set when an unreadable ledger was kept aside
        self.problem = ""
        try:
            check_readable(path)
        except ValueError as exc:
            if read_only:
                raise ValueError(f"the ledger {path} cannot be read ({exc})") from None
            self.moved_aside = move_aside(path)
            self.problem = str(exc)
        self.db = TinyDB(str(path), storage=AtomicJSONStorage)
        self.loot = self.db.table("loot")
        self.evals = self.db.table("evals")
        self.quests = self.db.table("quests")
        self.watchdog = self.db.table("watchdog")
        # The engine is the ledger's only writer, so the live loot can be kept in memory
        # between writes (tinydb re-reads the whole file on every query).
        self._live: list[dict[str, Any]] | None = None

    def record_loot(self, row: dict[str, Any]) -> None:
        self.loot.insert({**row, "deleted": False, "recorded_at": time.time()})
        self._live = None

    def record_eval(self, row: dict[str, Any]) -> None:
        """An eval result, linked to the newest loot taken before it."""
        self.evals.insert({**row, "recorded_at": time.time()})

    def record_quest(self, row: dict[str, Any]) -> None:
        """A finished quest, linked to the loot taken right after it."""
        self.quests.insert({**row, "recorded_at": time.time()})

    def record_intervention(self, row: dict[str, Any]) -> None:
        """What the watchdog did (a skipped spike, a rollback, a pause) and why."""
        self.watchdog.insert({**row, "recorded_at": time.time()})

    def update_loot(self, name: str, changes: dict[str, Any]) -> None:
        self.loot.update(changes, (Query().name == name) & (Query().deleted == False))  # noqa: E712
        self._live = None

    def rename_loot(self, name: str, new: str) -> None:
        self.update_loot(name, {"name": new, "set_aside_from": name})

    def mark_deleted(self, name: str) -> None:
        self.loot.update({"deleted": True}, Query().name == name)
        self._live = None

    def mark_corrupt(self, name: str, kept_as: str) -> None:
        """An unreadable loot: out of the live list, its row says where the folder went."""
        self.loot.update({"deleted": True, "corrupt": kept_as}, Query().name == name)
        self._live = None

    def refresh(self) -> None:
        """Forget the cached rows (a reader beside the engine, before each look)."""
        self._live = None

    def live_loot(self) -> list[dict[str, Any]]:
        """Checkpoints that exist, oldest first."""
        if self._live is None:
            rows = [dict(r) for r in self.loot.all() if not r.get("deleted") and "name" in r and "step" in r]
            self._live = sorted(rows, key=lambda r: (r["step"], r.get("recorded_at", 0)))
        return list(self._live)

    def close(self) -> None:
        self.db.close()
