"""The loot feed: checkpoints, newest first."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine.protocol.messages import LootInfo

REASON_ICON = {"auto": "⚱", "manual": "💎", "stop": "🛡"}


def ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


class LootFeed(Widget):
    loot: reactive[tuple[LootInfo, ...]] = reactive(tuple)

    def on_mount(self) -> None:
        self.border_title = "loot"
        self.set_interval(30, self.refresh)  # keep the "ago" column honest

    def render(self) -> Text:
        text = Text()
        if not self.loot:
            return Text("no loot yet — press s to save", style="dim")
        now = time.time()
        for item in reversed(self.loot[-50:]):
            icon = REASON_ICON.get(item.reason, "⚱")
            loss = f"{item.train_loss:.3f}" if item.train_loss is not None else "--"
            text.append(f"{icon} ", style="yellow")
            text.append(f"step {item.step:,}", style="bold")
            text.append(f" {loss} {ago(now - item.time)}\n", style="dim")
        return text
