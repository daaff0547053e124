"""The loot feed: checkpoints, newest first."""

from __future__ import annotations

import time

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from engine.protocol.messages import LootInfo
from tui.messages import OpenVault

# Why a loot was taken, as one icon: the feed, its legend and the Vault use these.
REASON_ICON = {
    "auto": "⚱",
    "manual": "💎",
    "quest": "📜",
    "phase": "🗺",
    "campaign": "🚩",
    "stop": "🛡",
    "rewind": "⏪",
    "adopted": "📥",
}
REASON_WORD = {  # (short, long)
    "auto": ("auto", "saved on schedule"),
    "manual": ("yours", "saved by you (s)"),
    "quest": ("quest", "a quest finished"),
    "phase": ("phase", "a campaign phase ended"),
    "campaign": ("campaign", "a campaign started or was left"),
    "stop": ("stop", "saved when DIO stopped"),
    "rewind": ("rewind", "where a rewind restarted"),
    "adopted": ("found", "a loot folder the ledger had lost, adopted"),
}


def legend(reasons: set[str]) -> str:
    """The icons in view, with a word each (the border's subtitle)."""
    return " ".join(f"{REASON_ICON[r]}{REASON_WORD[r][0]}" for r in REASON_ICON if r in reasons)


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
        icons = "\n".join(f"{REASON_ICON[r]} {REASON_WORD[r][1]}" for r in REASON_ICON)
        self.tooltip = f"{icons}\nClick a loot: the Vault at it (there, i: the numbers at that loot)"
        self.set_interval(30, self.refresh)  # keep the "ago" column honest

    def watch_loot(self) -> None:
        self.border_subtitle = legend({item.reason for item in self.loot[-50:]})

    def shown(self) -> list[LootInfo]:
        """The loot in the order they are drawn, one a row (newest first)."""
        return list(reversed(self.loot[-50:]))

    def on_click(self, event: events.Click) -> None:
        at = event.get_content_offset(self)
        rows = self.shown()
        if at is not None and 0 <= at.y < len(rows):
            self.post_message(OpenVault(rows[at.y].name))

    def render(self) -> Text:
        text = Text()
        if not self.loot:
            return Text("no loot yet — press s to save", style="dim")
        now = time.time()
        for item in self.shown():
            icon = REASON_ICON.get(item.reason, "⚱")
            loss = f"{item.train_loss:.3f}" if item.train_loss is not None else "--"
            text.append(f"{icon} ", style="yellow")
            text.append(f"step {item.step:,}", style="bold")
            text.append(f" {loss} {ago(now - item.time)}\n", style="dim")
        return text
