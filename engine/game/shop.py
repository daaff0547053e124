"""The Market: what gold buys. Only looks — a title after the hero's name, a portrait in
the battle, a colour theme — so spending never changes training.

Gold is earned (quests, hero levels: engine/game/progress.py) and saved with loot; what
was bought is kept in saves/HERO/shop.json, written by the engine alone. The purse is
earned − spent, so a resume from an older loot never refunds a purchase or lets the same
gold be spent twice (it can leave the purse short for a while; it never goes below 0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.store.atomic import read_json_kept, write_json

KINDS = ("title", "portrait", "theme")


@dataclass(frozen=True)
class Ware:
    id: str
    kind: str  # one of KINDS
    name: str
    price: int  # 0: free, owned from the start
    look: str  # the title's words, the portrait's id (tui/widgets/battle.py), the theme's name


WARES = (
    Ware("no-title", "title", "No title", 0, ""),
    Ware("title-diligent", "title", "the Diligent", 50, "the Diligent"),
    Ware("title-tireless", "title", "the Tireless", 150, "the Tireless"),
    Ware("title-slayer", "title", "Loss Slayer", 300, "Loss Slayer"),
    Ware("title-gradient", "title", "of the Gradient", 600, "of the Gradient"),
    Ware("portrait-dio", "portrait", "Brawler (DIO's own)", 0, "dio"),
    Ware("portrait-cat", "portrait", "Cat", 100, "cat"),
    Ware("portrait-robot", "portrait", "Robot", 200, "robot"),
    Ware("portrait-wizard", "portrait", "Wizard", 400, "wizard"),
    Ware("theme-dark", "theme", "Tavern dark", 0, "textual-dark"),
    Ware("theme-light", "theme", "Tavern light", 0, "textual-light"),
    Ware("theme-nord", "theme", "Nord", 100, "nord"),
    Ware("theme-gruvbox", "theme", "Gruvbox", 100, "gruvbox"),
    Ware("theme-dracula", "theme", "Dracula", 200, "dracula"),
    Ware("theme-tokyo", "theme", "Tokyo night", 200, "tokyo-night"),
    Ware("theme-rose", "theme", "Rosé pine", 300, "rose-pine"),
)
BY_ID = {w.id: w for w in WARES}
DEFAULT_WORN = {"title": "no-title", "portrait": "portrait-dio", "theme": "theme-dark"}


class Shop:
    def __init__(self, path: Path) -> None:
        self.path = path
        data, self.warning = read_json_kept(path)
        data = data if isinstance(data, dict) else {}
        owned = _table(data.get("owned"))
        # Wares no longer sold stay out (and their price out of `spent`: nothing lost).
        self.owned: dict[str, dict[str, Any]] = {
            k: v for k, v in owned.items() if k in BY_ID and isinstance(v, dict)
        }
        worn = _table(data.get("worn"))
        self.worn = {kind: worn.get(kind, DEFAULT_WORN[kind]) for kind in KINDS}
        for kind, ware_id in self.worn.items():
            if not isinstance(ware_id, str) or not self.has(ware_id) or BY_ID[ware_id].kind != kind:
                self.worn[kind] = DEFAULT_WORN[kind]

    @property
    def spent(self) -> int:
        """Gold paid: the price recorded at each purchase (a later price change refunds
        nothing and charges nothing); the catalogue's where the record is unreadable."""
        total = 0
        for ware_id, row in self.owned.items():
            price = row.get("price")
            if isinstance(price, int) and not isinstance(price, bool) and price >= 0:
                total += price
            else:
                total += BY_ID[ware_id].price
        return total

    def purse(self, earned: int) -> int:
        return max(0, earned - self.spent)

    def has(self, ware_id: str) -> bool:
        ware = BY_ID.get(ware_id)
        return ware is not None and (ware.price == 0 or ware_id in self.owned)

    def buy(self, ware_id: str, earned: int, step: int) -> tuple[bool, str]:
        """Pay for a ware and wear it. (ok, what happened)."""
        ware = BY_ID.get(ware_id)
        if ware is None:
            return False, f"The Market sells no '{ware_id}'"
        if self.has(ware_id):  # bought before (or free): no second payment
            return self.wear(ware_id)
        purse = self.purse(earned)
        if ware.price > purse:
            return False, f"{ware.name} costs {ware.price} gold; the purse holds {purse}"
        self.owned[ware_id] = {"price": ware.price, "step": step, "time": time.time()}
        self.worn[ware.kind] = ware_id
        self.save()
        return True, f"Bought {ware.name} for {ware.price} gold ({purse - ware.price} left) and put it on"

    def wear(self, ware_id: str) -> tuple[bool, str]:
        ware = BY_ID.get(ware_id)
        if ware is None:
            return False, f"The Market sells no '{ware_id}'"
        if not self.has(ware_id):
            return False, f"{ware.name} is not yours yet: it costs {ware.price} gold"
        self.worn[ware.kind] = ware_id
        self.save()
        return True, f"Wearing {ware.name}"

    def looks(self) -> dict[str, str]:
        """What is worn, kind → look (hero.json carries it for the first frame)."""
        return {kind: BY_ID[ware_id].look for kind, ware_id in self.worn.items()}

    def info(self, earned: int) -> p.ShopInfo:
        wares = tuple(
            p.WareInfo(
                w.id, w.kind, w.name, w.price, w.look, owned=self.has(w.id), worn=self.worn[w.kind] == w.id
            )
            for w in WARES
        )
        return p.ShopInfo(purse=self.purse(earned), wares=wares)

    def save(self) -> None:
        write_json(self.path, {"owned": self.owned, "worn": self.worn})


def _table(value: Any) -> dict[str, Any]:
    """A part of shop.json, or {} when a hand edit broke it (the looks go back to default)."""
    return value if isinstance(value, dict) else {}
