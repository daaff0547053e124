"""How many toasts may stand at once. A burst of news (a spar: an eval, two quests queued
and finished, achievements) stacked nine toasts over half an 80×24 screen; Textual shows
every one at once. Here the rest wait their turn (errors first), and past a short queue
the oldest plain news is folded into one line pointing at the log book, which keeps it all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from textual.notifications import SeverityLevel

TOAST_ROWS = 5  # a two-line toast with its title and the gap; the rack may take half the screen
MAX_WAITING = 6  # news older than this queue is summed up, not shown late


@dataclass(frozen=True)
class Toast:
    message: str
    title: str
    severity: SeverityLevel
    timeout: float
    markup: bool = True


class ToastQueue:
    """Which toasts to show now and which wait. Pure: the app passes the clock."""

    def __init__(self) -> None:
        self.until: list[float] = []  # when each toast on screen goes away
        self.waiting: deque[Toast] = deque()
        self.folded = 0  # plain news dropped from the queue: one summary toast says how many

    def room(self, screen_rows: int) -> int:
        return max(1, screen_rows // 2 // TOAST_ROWS)

    def offer(self, toast: Toast, now: float, screen_rows: int) -> list[Toast]:
        """The toasts to show now (this one, or none while the screen is full)."""
        if toast.severity == "information":
            self.waiting.append(toast)
        else:  # a warning or an error goes before plain news, after the ones already waiting
            urgent = sum(1 for t in self.waiting if t.severity != "information")
            self.waiting.insert(urgent, toast)
        while len(self.waiting) > MAX_WAITING and self._fold_one():
            pass
        return self.due(now, screen_rows)

    def due(self, now: float, screen_rows: int) -> list[Toast]:
        """What may be shown now that some toasts have gone."""
        self.until = [t for t in self.until if t > now]
        shown: list[Toast] = []
        while len(self.until) < self.room(screen_rows) and (self.waiting or self.folded):
            if self.waiting:
                toast = self.waiting.popleft()
            else:
                news = f"{self.folded} more piece{'s' * (self.folded != 1)} of news"
                toast = Toast(f"{news}: l opens the log book", "", "information", 5.0)
                self.folded = 0
            self.until.append(now + toast.timeout)
            shown.append(toast)
        return shown

    def next_change(self) -> float | None:
        """When a toast goes and a waiting one can be shown, if any waits."""
        if not (self.waiting or self.folded) or not self.until:
            return None
        return min(self.until)

    def _fold_one(self) -> bool:
        for toast in self.waiting:
            if toast.severity == "information":
                self.waiting.remove(toast)
                self.folded += 1
                return True
        return False
