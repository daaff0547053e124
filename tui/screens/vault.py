"""The Vault: every loot with its losses, its own eval scores, its size and why the
retention policy keeps it; keys to sort, pin, delete, evaluate, compare, rewind, export
and ask the Oracle.

The screen only sends commands; the engine answers with a VaultReply (a notice) and a
new VaultListed, handed back through ``show``. The cursor follows its loot through
every redraw and re-sort (``KeyedTable``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from engine.protocol import messages as p
from tui.cli.vault import size
from tui.messages import ExportLoot, OpenOracle, OpenStats, SendCommand
from tui.screens.confirm import ConfirmScreen
from tui.screens.prompt import PromptScreen
from tui.screens.sub_screen import SubScreen
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.loot_feed import REASON_ICON

DOWN = "The engine is down: the Vault cannot change now."


def loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def sort_keys(skills: list[str], suites: list[str]) -> list[tuple[str, Callable[[p.LootInfo], Any]]]:
    """(label, key) for each way to sort (each skill, each eval suite); a missing value
    sorts last."""
    keys: list[tuple[str, Callable[[p.LootInfo], Any]]] = [
        ("newest", lambda x: (-x.time,)),
        ("val loss", lambda x: (x.val_loss is None, x.val_loss or 0.0)),
        ("train loss", lambda x: (x.train_loss is None, x.train_loss or 0.0)),
        ("size", lambda x: (-x.size_bytes,)),
    ]
    for skill in skills:
        keys.append((skill, _by_skill(skill)))
    for suite in suites:
        keys.append((f"suite {suite}", _by_suite(suite)))
    return keys


def _by_suite(suite: str) -> Callable[[p.LootInfo], Any]:
    def key(loot: p.LootInfo) -> Any:
        score = dict(loot.metrics).get(suite)
        return (score is None, -(score or 0.0))

    return key


def _by_skill(skill: str) -> Callable[[p.LootInfo], Any]:
    def key(loot: p.LootInfo) -> Any:
        score = next((s for s in loot.skills if s.skill == skill), None)
        return (score is None, -(score.level if score else 0), -(score.accuracy if score else 0.0))

    return key


class VaultScreen(SubScreen):
    BINDINGS = [
        Binding("escape,v", "app.pop_screen", "Back"),
        # Short words, so the footer fits 80 columns; t is in the summary line, i in the
        # detail, and `?` and the palette list all of them.
        Binding("t", "sort", "Sort", show=False, tooltip="Sort by the next column (step, loss, each skill)"),
        Binding("p", "pin", "Pin", tooltip="Pin or unpin the loot (retention never takes a pinned one)"),
        Binding("e", "eval", "Eval", tooltip="Score the loot's own weights on every skill"),
        Binding("m", "mark", "Mark", tooltip="Mark this loot; c compares the highlighted one with it"),
        Binding("c", "compare", "Compare", tooltip="Compare the marked loot with the highlighted one"),
        Binding("o", "ask", "Ask", tooltip="Ask this loot a question (the Oracle)"),
        Binding("x", "export", "Export", tooltip="Write the loot as a plain Hugging Face folder"),
        Binding("r", "rewind", "Rewind", tooltip="Continue training from this loot (newer loot set aside)"),
        Binding("d,delete", "delete", "Delete", tooltip="Delete this loot (asks first)"),
        Binding(
            "i",
            "stats",
            "Stats",
            show=False,
            tooltip="The numbers at the highlighted loot: lr, grad norm, evals",
        ),
    ]

    APP_KEYS_IN_FOOTER = ("question_mark",)  # space pauses here too; there is no room to list it

    def __init__(
        self, listing: p.VaultListed | None, loot: list[p.LootInfo], focus: str | None = None
    ) -> None:
        """``focus``: the loot to highlight first (a click on the Tavern's loot feed)."""
        super().__init__()
        self.listing = listing or p.VaultListed(loot=tuple(loot))
        self.sort_index = 0
        self.marked: str | None = None
        self.focus_name = focus

    def compose(self) -> ComposeResult:
        yield Header(icon="💎")
        with Vertical(id="vault"):
            yield Static(id="vault-summary")
            yield KeyedTable(id="vault-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="vault-detail")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p still opens it

    def on_mount(self) -> None:
        self.show(self.listing)
        table = self.query_one(KeyedTable)
        if self.focus_name is not None and self.focus_name in table.rows:
            table.move_cursor(row=table.get_row_index(self.focus_name), animate=False)
        table.focus()
        self.post_message(SendCommand(p.ListLoot(), DOWN))  # the full picture: kept-because, doomed

    # ------------------------------------------------------------------ drawing

    def skills(self) -> list[str]:
        return sorted({s.skill for loot in self.listing.loot for s in loot.skills})

    def suites(self) -> list[str]:
        return sorted({name for loot in self.listing.loot for name, _ in loot.metrics})

    def sorts(self) -> list[tuple[str, Callable[[p.LootInfo], Any]]]:
        return sort_keys(self.skills(), self.suites())

    def show(self, listing: p.VaultListed) -> None:
        self.listing = listing
        table = self.query_one(KeyedTable)
        skills = self.skills()
        columns = ["", "loot", "why", "train", "val", *skills, "size", "kept because"]
        if [str(c.label) for c in table.columns.values()] != columns:
            table.clear(columns=True)
            table.add_columns(*columns)
        label, key = self.sorts()[self.sort_index % len(self.sorts())]
        doomed = dict(listing.doomed)
        rows: list[tuple[str, list[str | Text]]] = []
        for loot in sorted(listing.loot, key=key):
            mark = ("📌" if loot.pinned else "") + ("◆" if loot.name == self.marked else "")
            scores = []
            for skill in skills:
                score = next((s for s in loot.skills if s.skill == skill), None)
                scores.append(f"{score.accuracy:.0%} L{score.level}" if score else "—")
            why = ", ".join(loot.kept_because) if loot.kept_because else f"goes: {doomed.get(loot.name, '?')}"
            name = Text(loot.name, style="dim" if loot.set_aside else "")
            icon = REASON_ICON.get(loot.reason, "•")
            cells: list[str | Text] = [
                mark,
                name,
                f"{icon} {loot.reason}",
                loss(loot.train_loss),
                loss(loot.val_loss),
            ]
            rows.append((loot.name, [*cells, *scores, size(loot.size_bytes), why]))
        table.replace_rows(rows)
        budget = f" of {size(listing.budget_bytes)}" if listing.budget_bytes else ""
        warn = "  [b $warning]over budget: unpin some[/]" if listing.over_budget else ""
        self.query_one("#vault-summary", Static).update(
            f"{len(listing.loot)} loot · {size(listing.kept_bytes)} kept{budget} · "
            f"resumes from {listing.resume_from or '—'} · sorted by [b]{label}[/b] (t){warn}"
        )
        self._show_detail()

    def selected(self) -> p.LootInfo | None:
        name = self.query_one(KeyedTable).cursor_key()
        return next((x for x in self.listing.loot if x.name == name), None)

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        loot = self.selected()
        text = ""
        if loot is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(loot.time))
            evals = (
                ", ".join(
                    f"{s.skill} {s.accuracy:.0%} at L{s.level} ({s.problems} problems)" for s in loot.skills
                )
                or "not evaluated (press e)"
            )
            if loot.metrics:  # eval suites: the user's own questions
                evals += "\nsuites: " + ", ".join(f"{name} {score:.0%}" for name, score in loot.metrics)
            aside = " · set aside by a rewind" if loot.set_aside else ""
            text = (
                f"[b]{loot.name}[/b] · step {loot.step:,} · {when} · {loot.source}{aside} · i: stats\n{evals}"
            )
            if self.marked and self.marked != loot.name:
                text += f"\nc compares it with {self.marked}"
        self.query_one("#vault-detail", Static).update(text)

    # ------------------------------------------------------------------ actions

    def _send(self, command: p.Command) -> None:
        self.post_message(SendCommand(command, DOWN))

    def _if(self, yes: bool | None, command: p.Command) -> None:
        if yes:
            self._send(command)

    def _need(self) -> p.LootInfo | None:
        loot = self.selected()
        if loot is None:
            self.notify("No loot yet: press s in the Tavern to save one.", severity="warning")
        return loot

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(self.sorts())
        self.show(self.listing)

    def action_pin(self) -> None:
        if loot := self._need():
            self._send(p.PinLoot(loot.name, not loot.pinned))

    def action_eval(self) -> None:
        if loot := self._need():
            self.notify(f"Evaluating {loot.name}'s own weights on every skill…", timeout=4)
            self._send(p.EvalLoot(loot.name))

    def action_mark(self) -> None:
        if loot := self._need():
            self.marked = None if self.marked == loot.name else loot.name
            self.show(self.listing)

    def action_compare(self) -> None:
        loot = self._need()
        if loot is None:
            return
        if self.marked is None or self.marked == loot.name:
            self.notify("Mark one loot with m, move to another, then press c.", severity="warning")
            return
        marked = next((x for x in self.listing.loot if x.name == self.marked), None)
        older, newer = sorted([marked or loot, loot], key=lambda x: (x.step, x.time))
        self.notify(f"Comparing {older.name} with {newer.name}…", timeout=4)
        self._send(p.CompareLoot(older.name, newer.name))  # "fixed" then reads older → newer

    def action_ask(self) -> None:
        if loot := self._need():
            self.post_message(OpenOracle(loot.name))

    def action_stats(self) -> None:
        if loot := self._need():
            self.post_message(OpenStats(loot.name))

    def action_export(self) -> None:
        loot = self._need()
        if loot is None:
            return
        default = f"~/realm-exports/{loot.name}"
        question = f"Export {loot.name} as a plain Hugging Face folder (LoRA merged) into:"
        self.app.push_screen(
            PromptScreen("Export", question, default),
            lambda dest: self._export(loot.name, dest),
        )

    def _export(self, name: str, dest: str | None) -> None:
        if dest is not None:
            self.post_message(ExportLoot(name, dest))

    def action_rewind(self) -> None:
        loot = self._need()
        if loot is None:
            return
        if loot.set_aside:
            self.notify(
                "That loot was set aside by an earlier rewind; rewind to one of this line.",
                severity="warning",
            )
            return
        question = f"Rewind training to {loot.name} (step {loot.step:,})?"
        detail = "Training continues from it. Newer loot stay in the Vault, set aside."
        self.app.push_screen(
            ConfirmScreen(question, detail), lambda yes: self._if(yes, p.RewindTo(loot.name))
        )

    def action_delete(self) -> None:
        loot = self._need()
        if loot is None:
            return
        if loot.name == self.listing.resume_from:
            self.notify("Training resumes from this loot: it cannot be deleted.", severity="warning")
            return
        extra = " It is pinned." if loot.pinned else ""
        self.app.push_screen(
            ConfirmScreen(f"Delete {loot.name}?", f"Its folder ({size(loot.size_bytes)}) is removed.{extra}"),
            lambda yes: self._if(yes, p.DeleteLoot(loot.name)),
        )


class CompareScreen(SubScreen):
    """Two loot side by side: metrics, then which eval problems each gets right."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, compared: p.LootCompared) -> None:
        super().__init__()
        self.compared = compared
        self.problems: list[p.ProblemDiff] = []  # in the table's order (row key = index)

    def compose(self) -> ComposeResult:
        yield Header(icon="⚖")
        with Vertical(id="compare"):
            yield KeyedTable(id="compare-metrics")
            yield KeyedTable(id="compare-problems", cursor_type="row", zebra_stripes=True)
            # The highlighted problem whole, with the right answer and each loot's.
            yield Static(id="compare-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        c = self.compared
        metrics = self.query_one("#compare-metrics", KeyedTable)
        metrics.add_columns("", c.a, c.b)
        for name, a, b in c.metrics:
            metrics.add_row(name, _num(a), _num(b), key=name)
        problems = self.query_one("#compare-problems", KeyedTable)
        problems.add_columns(f"{c.a} → {c.b}", "skill", "problem")
        order = {
            (False, True): "fixed",
            (True, False): "broken",
            (True, True): "both right",
            (False, False): "both wrong",
        }
        self.problems = sorted(c.problems, key=lambda d: list(order).index((d.a_right, d.b_right)))
        for i, d in enumerate(self.problems):
            label = order[(d.a_right, d.b_right)]
            style = {"fixed": "green", "broken": "red"}.get(label, "")
            problems.add_row(Text(label, style=style), f"{d.skill} L{d.level}", d.prompt[:120], key=str(i))
        self.sub_title = f"{c.a} vs {c.b}"
        problems.focus()
        self._show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        key = self.query_one("#compare-problems", KeyedTable).cursor_key()
        detail = self.query_one("#compare-detail", Static)
        if key is None:
            detail.update("")
            return
        d = self.problems[int(key)]
        c = self.compared
        # The answers first: at 80x24 a long problem (an SY puzzle) would push them out of
        # sight, and the table already shows the problem's start.
        text = Text()
        if d.expected:
            text.append(f"right answer: {' '.join(d.expected.split())}\n", style="bold")
        for name, answer, right in ((c.a, d.a_answer, d.a_right), (c.b, d.b_answer, d.b_right)):
            text.append(f"{name}: ", style="green" if right else "red")
            text.append((" ".join(answer.split()) or "(no answer)") + "\n")
        text.append(" ".join(d.prompt.split()), style="dim")
        detail.update(text)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"
