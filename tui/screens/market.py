"""The Market: spend gold on looks — a title after the hero's name, a portrait in the
battle, a colour theme. Nothing here changes training (engine/game/shop.py sells looks
only). Enter buys the highlighted ware (or puts it on when it is already yours)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static

from engine.protocol import messages as p
from tui.messages import SendCommand
from tui.screens.sub_screen import SubScreen
from tui.widgets.battle import POSE_SETS
from tui.widgets.keyed_table import KeyedTable

KIND_WORDS = {"title": "title", "portrait": "portrait", "theme": "theme"}
EARNING = "Gold comes from finished quests (+100) and hero levels (+50)."


def state_cell(ware: p.WareInfo, purse: int) -> Text:
    if ware.worn:
        return Text("worn", style="bold green")
    if ware.owned:
        return Text("yours: Enter wears", style="green")
    if ware.price > purse:
        return Text(f"{ware.price - purse} gold short", style="dim")
    return Text("Enter buys", style="yellow")


def preview(ware: p.WareInfo, hero: str) -> str:
    """What the ware looks like on this hero."""
    if ware.kind == "title":
        return f"{hero} {ware.look or '(no title)'} — on the hero card"
    if ware.kind == "portrait":
        return "  ".join(POSE_SETS.get(ware.look, ())) + " — in the battle"
    return f"the {ware.name} colours for every screen (Textual theme {ware.look})"


class MarketScreen(SubScreen):
    BINDINGS = [
        # b as well as Enter: the table's own Enter hides a screen binding from the footer.
        Binding(
            "b,enter", "take", "Buy / wear", tooltip="Buy the highlighted ware, or wear it if it is yours"
        ),
        Binding("escape,dollar_sign", "app.pop_screen", "Back", key_display="esc"),
    ]

    def __init__(self, shop: p.ShopInfo, hero: str = "DIO", connected: bool = True) -> None:
        super().__init__()
        self.shop = shop
        self.hero = hero
        self.connected = connected

    def compose(self) -> ComposeResult:
        yield Header(icon="💰")
        with Vertical(id="market"):
            yield Static(id="market-summary")
            yield KeyedTable(id="market-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="market-preview")
            # The Market's answers, here rather than as toasts: a toast at 80×24 covers the prices.
            yield Static(id="market-word")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(KeyedTable).add_columns("kind", "ware", "price", "")
        self.show(self.shop, self.connected)
        self.query_one(KeyedTable).focus()

    def show(self, shop: p.ShopInfo, connected: bool = True) -> None:
        """``shop.purse``: the gold now (the app passes the hero card's, which grows with
        every level, not only the purse of the engine's last Market answer)."""
        if (
            self.is_mounted
            and (shop, connected) == (self.shop, self.connected)
            and self.query_one(KeyedTable).row_count
        ):
            return  # every frame calls this; redraw only what changed
        self.shop, self.connected = shop, connected
        if not shop.wares:
            summary = "The Market opens once the engine has said what it sells."
        else:
            summary = f"Purse: {shop.purse:,} gold. {EARNING} Looks only: training is never changed."
        if not connected:
            summary += " (The engine is down: nothing can be bought now.)"
        self.query_one("#market-summary", Static).update(summary)
        self.query_one(KeyedTable).replace_rows((w.id, self._row(w)) for w in shop.wares)
        self._preview()

    def say(self, message: str, ok: bool = True) -> None:
        """The last answer (a purchase, a refusal) under the wares."""
        self.query_one("#market-word", Static).update(Text(message, style="green" if ok else "yellow"))

    def _row(self, ware: p.WareInfo) -> tuple[str | Text, ...]:
        price = f"{ware.price:,}" if ware.price else "free"
        return (KIND_WORDS.get(ware.kind, ware.kind), ware.name, price, state_cell(ware, self.shop.purse))

    def _ware(self) -> p.WareInfo | None:
        key = self.query_one(KeyedTable).cursor_key()
        return next((w for w in self.shop.wares if w.id == key), None)

    def _preview(self) -> None:
        ware = self._ware()
        # Text, not a str: a robot's "[o_o]" would be read as markup
        self.query_one("#market-preview", Static).update(Text(preview(ware, self.hero) if ware else ""))

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._preview()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_take()  # Enter on the table (the table's own binding takes the key)

    def action_take(self) -> None:
        ware = self._ware()
        if ware is None:
            return
        if not ware.owned and ware.price > self.shop.purse:
            self.say(f"{ware.name} costs {ware.price:,} gold; the purse holds {self.shop.purse:,}.", ok=False)
            return
        command: p.Command = p.Wear(ware.id) if ware.owned else p.Buy(ware.id)
        self.post_message(SendCommand(command, "The engine is down: the Market is closed."))
