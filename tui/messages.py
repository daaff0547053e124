"""The Textual messages of the game: one wraps every protocol event (and the link's own
happenings), others carry a screen's request up to the app, which owns the link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from textual.message import Message

from engine.protocol import messages as p


@dataclass(frozen=True)
class LinkLost:
    """The connection ended (engine exited or crashed)."""

    reason: str


@dataclass(frozen=True)
class LinkWaiting:
    """Still trying to reach the engine (it is loading torch and the hero)."""

    seconds: float


LinkEvent: TypeAlias = p.Event | LinkLost | LinkWaiting  # everything the link thread posts

# Events that only move numbers: a newer one makes an older one still in the queue
# redundant, so a flood of them coalesces instead of piling up (as toolong does).
COALESCING = (p.StepCompleted, p.GpuTelemetry, LinkWaiting)


class EngineMessage(Message):
    """Wraps one protocol event (or LinkLost / LinkWaiting)."""

    def __init__(self, event: LinkEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, EngineMessage)
            and isinstance(self.event, COALESCING)
            and type(message.event) is type(self.event)
        )


class SendCommand(Message):
    """A screen asks the app to send a command to the engine (the app owns the link)."""

    def __init__(self, command: p.Command, failure: str = "The engine is down.") -> None:
        super().__init__()
        self.command = command
        self.failure = failure  # said when there is no engine to send it to


class ExportLoot(Message):
    """The Vault asks the app to export a loot into ``dest`` (engine-side process)."""

    def __init__(self, name: str, dest: str) -> None:
        super().__init__()
        self.name = name
        self.dest = dest


class OpenOracle(Message):
    """Open the Oracle with a loot chosen (the Vault's o)."""

    def __init__(self, loot: str | None) -> None:
        super().__init__()
        self.loot = loot


class OpenStats(Message):
    """Open the stats at a loot (the Vault's i): its numbers, its step marked on the chart."""

    def __init__(self, loot: str) -> None:
        super().__init__()
        self.loot = loot


class OpenVault(Message):
    """Open the Vault with a loot highlighted (a click on the loot feed)."""

    def __init__(self, loot: str) -> None:
        super().__init__()
        self.loot = loot
