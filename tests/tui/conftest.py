"""The game against a fake engine: the engine's end of a Pipe, driven by the test."""

from __future__ import annotations

import asyncio
from multiprocessing import Pipe
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient

STATS = p.HeroStats(step=1500, level=1, atk=0.8, defense=0.7, acc=0.5, gold=0, train_loss=1.25, val_loss=1.4)


def snapshot(**changes: Any) -> p.Snapshot:
    base = dict(
        protocol_version=p.PROTOCOL_VERSION,
        hero="dio",
        model="hatchling",
        device="cpu",
        state="training",
        pid=4242,
        stats=STATS,
        tokens_per_s=3210.0,
        source="ARI L2",
        train_losses=((1499, 1.3), (1500, 1.25)),
        val_losses=((1500, 1.4),),
        loot=(),
        log=("DIO wakes",),
        masked_fraction=0.8,
        params=3_300_000,
    )
    base.update(changes)
    return p.Snapshot(**base)  # type: ignore[arg-type]


class FakeEngine:
    """The engine's end of the pipe, driven by the test."""

    def __init__(self) -> None:
        self.ui_end, self.conn = Pipe()
        self.connects = 0

    def connector(self) -> EngineClient:
        self.connects += 1
        return EngineClient(self.ui_end)

    async def expect(self, kind: type, timeout: float = 5.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.conn.poll():
                message = self.conn.recv()
                if isinstance(message, kind):
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"the UI never sent {kind.__name__}")

    def send(self, event: Any) -> None:
        self.conn.send(event)


async def settle(pilot: Any, rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0.03)
        await pilot.pause()


async def start(pilot: Any, engine: FakeEngine, snap: p.Snapshot | None = None) -> None:
    await engine.expect(p.Hello)
    engine.send(snap or snapshot())
    await settle(pilot)
