"""The ledger: a tinydb file of every loot (checkpoint) the hero has taken.

tinydb's stock JSONStorage rewrites the file in place, so a kill mid-write could
corrupt it; the ledger row is our commit point, so this storage writes atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from engine.store.atomic import write_text


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


class Ledger:
    def __init__(self, path: Path) -> None:
        self.db = TinyDB(str(path), storage=AtomicJSONStorage)
        self.loot = self.db.table("loot")
        self.evals = self.db.table("evals")
        self.quests = self.db.table("quests")
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

    def mark_deleted(self, name: str) -> None:
        self.loot.update({"deleted": True}, Query().name == name)
        self._live = None

    def live_loot(self) -> list[dict[str, Any]]:
        """Checkpoints that exist, oldest first."""
        if self._live is None:
            rows = [dict(r) for r in self.loot.all() if not r.get("deleted")]
            self._live = sorted(rows, key=lambda r: (r["step"], r["recorded_at"]))
        return list(self._live)

    def close(self) -> None:
        self.db.close()
