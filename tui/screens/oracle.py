"""The Oracle: chat with DIO — the live weights or any loot — and watch the reply
arrive token by token. Every reply is signed with the loot, its step and the hash of
the weights that wrote it. ctrl+t asks the last question of the base model and a
spread of loot (the growth timeline).

The screen sends Ask commands; the app hands back OracleToken / OracleAnswered /
CommandRejected("Ask") through ``token``, ``answered`` and ``refused``.
"""

from __future__ import annotations

import uuid

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Input, Select, Static

from engine.protocol import messages as p
from tui.cli.oracle import spread
from tui.messages import SendCommand
from tui.screens.sub_screen import SubScreen

LIVE = "live"
DOWN = "The engine is down: DIO cannot answer now (`realm oracle ask` reads loot from disk)."


class OracleScreen(SubScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+t", "timeline", "Timeline"),
        Binding("ctrl+l", "clear", "New chat"),
    ]

    def __init__(self, loot: list[p.LootInfo], chosen: str | None = None, hero: str = "DIO") -> None:
        super().__init__()
        self.loot = loot
        self.hero = hero
        self.chosen = chosen or LIVE
        self.turns: list[str] = []  # user, assistant, … of the conversation
        self.pending: dict[str, Static] = {}  # request id -> the reply being written
        self.texts: dict[str, str] = {}
        self.timeline: set[str] = set()  # request ids asked for the timeline (not the chat)

    def compose(self) -> ComposeResult:
        yield Header(icon="🔮")
        with Horizontal(id="oracle-settings"):
            yield Select(self.options(), value=self.chosen, allow_blank=False, id="oracle-loot")
            yield Input("0", id="oracle-temperature", placeholder="temperature", restrict=r"[0-9.]*")
            yield Input("1", id="oracle-top-p", placeholder="top-p", restrict=r"[0-9.]*")
            yield Input("", id="oracle-max", placeholder="max tokens", restrict=r"[0-9]*")
        yield VerticalScroll(id="oracle-log")
        yield Input(placeholder=f"Ask {self.hero}… (Enter sends)", id="oracle-prompt")
        yield Footer(compact=True)

    def options(self) -> list[tuple[str, str]]:
        names = [(f"{x.name} (step {x.step:,})", x.name) for x in reversed(self.loot)]
        return [("live weights (now)", LIVE), *names, ("base model (before training)", "base")]

    def on_mount(self) -> None:
        for widget, title in (
            ("#oracle-loot", "weights"),
            ("#oracle-temperature", "temp"),
            ("#oracle-top-p", "top-p"),
            ("#oracle-max", "tokens"),  # "max tokens" is cut at 80 columns
        ):
            self.query_one(widget).border_title = title
        self.query_one("#oracle-prompt", Input).focus()
        self._say(
            "[dim]Temperature 0 is greedy. The settings row: loot · temperature · top-p · max new tokens.[/dim]"
        )

    # ------------------------------------------------------------------ asking

    def _settings(self) -> tuple[float, float, int] | None:
        try:
            temperature = float(self.query_one("#oracle-temperature", Input).value or 0)
            top_p = float(self.query_one("#oracle-top-p", Input).value or 1)
            max_new = int(self.query_one("#oracle-max", Input).value or 0)
        except ValueError:
            self.notify(
                "Temperature and top-p are numbers (e.g. 0.7), max tokens a whole number.", severity="error"
            )
            return None
        return temperature, top_p, max_new

    def _ask(self, loot: str, turns: tuple[str, ...], heading: str, timeline: bool = False) -> bool:
        settings = self._settings()
        if settings is None:
            return False
        request = uuid.uuid4().hex[:8]
        command = p.Ask(request, turns, None if loot == LIVE else loot, *settings)
        problem = p.command_problem(command)
        if problem is not None:
            self.notify(problem.replace("Ask.", ""), severity="error")
            return False
        reply = self._say(f"[b]{escape(heading)}[/b] …")
        self.pending[request] = reply
        self.texts[request] = ""
        if timeline:
            self.timeline.add(request)
        self.post_message(SendCommand(command, DOWN))
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "oracle-prompt" or not event.value.strip():
            return
        question = event.value.strip()
        loot = str(self.query_one("#oracle-loot", Select).value)
        turns = (*self.turns, question)
        self._say(f"[b $accent]You:[/b $accent] {escape(question)}")
        if self._ask(loot, turns, f"{self.hero} ({loot}):"):
            self.turns.append(question)
            event.input.value = ""

    def action_timeline(self) -> None:
        question = next((t for t in reversed(self.turns[::2])), None)
        if question is None:
            self.notify("Ask a question first; ctrl+t then asks it across the run.", severity="warning")
            return
        names = ["base", *spread([x.name for x in self.loot if not x.set_aside])]
        self._say(f"[b]Growth timeline[/b] for: {escape(question)}")
        for name in names:
            self._ask(name, (question,), f"{name}:", timeline=True)

    def action_clear(self) -> None:
        self.turns.clear()
        self.query_one("#oracle-log", VerticalScroll).remove_children()
        self._say("[dim]A new conversation.[/dim]")

    # ------------------------------------------------------------------ replies

    def token(self, event: p.OracleToken) -> None:
        widget = self.pending.get(event.request_id)
        if widget is None:
            return
        self.texts[event.request_id] += event.text
        head = str(widget.name or "")
        widget.update(f"{head} {escape(self.texts[event.request_id])}▌")
        self.query_one("#oracle-log", VerticalScroll).scroll_end(animate=False)

    def answered(self, event: p.OracleAnswered) -> None:
        widget = self.pending.pop(event.request_id, None)
        if widget is None:
            return
        head = str(widget.name or "")
        sign = (
            f"[dim]— {event.loot}, step {event.step:,}, weights {event.weights_hash[:12]}, "
            f"{event.new_tokens} tokens in {event.seconds:.2f}s ({event.placement})[/dim]"
        )
        widget.update(f"{head} {escape(event.text) or '[dim](no words)[/dim]'}\n{sign}")
        if event.request_id not in self.timeline:
            self.turns.append(event.text)
        self.query_one("#oracle-log", VerticalScroll).scroll_end(animate=False)

    def refused(self, reason: str) -> None:
        """The engine refused the oldest question still waiting (unknown loot, no room)."""
        if not self.pending:
            return
        request = next(iter(self.pending))
        widget = self.pending.pop(request)
        widget.update(f"[b $error]Refused:[/] {escape(reason)}")
        if request not in self.timeline and self.turns:
            self.turns.pop()  # the question had no answer: leave it out of the history

    def _say(self, markup: str) -> Static:
        heading = markup.removesuffix(" …") if markup.endswith(" …") else ""
        widget = Static(markup, classes="oracle-line", name=heading or None)
        log = self.query_one("#oracle-log", VerticalScroll)
        log.mount(widget)
        log.scroll_end(animate=False)
        return widget
