"""One line: training / paused / engine down, tokens per second, device, step."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

STYLES = {
    "TRAINING": "bold black on green",
    "PAUSED": "bold black on yellow",
    "PAUSING…": "bold black on yellow",
    "ENGINE DOWN": "bold white on red",
    "WAKING UP": "bold black on cyan",
    "STOPPING": "bold black on magenta",
    "STOPPED": "bold white on blue",
}


class StatusBar(Widget):
    word: reactive[str] = reactive("WAKING UP")
    detail: reactive[str] = reactive("")

    def on_mount(self) -> None:
        self.tooltip = (
            "steps/min: the recent pace · tok/s: tokens trained per second · then what DIO trains on\n"
            "learns from N%: the share of tokens with a loss (DIO's answers); prompts and padding "
            "are masked out"
        )

    def render(self) -> Text:
        # One line: a long detail ends in an ellipsis rather than wrapping out of sight.
        text = Text(no_wrap=True, overflow="ellipsis")
        # a task's word ("EVALUATING 12/70") while training waits for it
        text.append(f" {self.word} ", style=STYLES.get(self.word, "bold black on bright_cyan"))
        text.append(f" {self.detail}")
        return text
