"""The layout of one hero's save folder (DESIGN.md, "Saves")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import protocol as p


@dataclass(frozen=True)
class SaveDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def base_model(self) -> Path:
        """Where the hatchling is created (a hero from --model trains from its own path)."""
        return self.root / "base"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.json"

    @property
    def status(self) -> Path:
        return self.root / p.STATUS_NAME

    @property
    def lock(self) -> Path:
        return self.root / p.LOCK_NAME

    @property
    def pid(self) -> Path:
        return self.root / p.PID_NAME

    @property
    def log(self) -> Path:
        return self.root / p.LOG_NAME

    @property
    def events(self) -> Path:
        return self.root / p.EVENTS_NAME

    @property
    def metrics(self) -> Path:
        return self.root / p.METRICS_NAME

    @property
    def socket(self) -> Path:
        return p.socket_path(self.root)

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
