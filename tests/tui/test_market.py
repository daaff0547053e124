"""The Market ($) at 80×24 against a fake engine: wares with prices, Enter buys what the
purse holds (and only asks the engine), the looks bought are worn everywhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.game.shop import Shop
from engine.protocol import messages as p
from tests.tui.conftest import STATS, FakeEngine, settle, snapshot, start
from tests.tui.test_app import visible_lines
from tui.app import RealmApp


def shop_info(tmp_path: Path, earned: int, *bought: str) -> p.ShopInfo:
    shop = Shop(tmp_path / "shop.json")
    for ware in bought:
        assert shop.buy(ware, earned, step=1)[0]
    return shop.info(earned)


async def highlight(pilot, app: RealmApp, ware_id: str) -> None:  # type: ignore[no-untyped-def]
    from tui.widgets.keyed_table import KeyedTable

    table = app.screen.query_one(KeyedTable)
    table.move_cursor(row=table.get_row_index(ware_id), animate=False)
    await settle(pilot)


@pytest.mark.asyncio
async def test_the_market_sells_what_the_purse_holds(tmp_path: Path) -> None:
    from tui.screens.market import MarketScreen

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    shop = shop_info(tmp_path, earned=120)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(stats=replace(STATS, gold=120), shop=shop))
        await pilot.press("$")
        await settle(pilot)
        assert isinstance(app.screen, MarketScreen)
        summary = " ".join(visible_lines(app.screen.query_one("#market-summary")))
        assert "Purse: 120 gold" in summary and "Looks only" in summary
        await highlight(pilot, app, "portrait-robot")  # 200: too dear
        assert "[O_O]" in " ".join(visible_lines(app.screen.query_one("#market-preview")))
        await pilot.press("enter")
        await settle(pilot)
        assert not engine.conn.poll()  # nothing asked of the engine
        word = app.screen.query_one("#market-word")
        assert "costs 200 gold" in " ".join(visible_lines(word))  # under the wares, not a toast
        assert not app._notifications  # nothing covers the prices at 80×24
        await highlight(pilot, app, "portrait-cat")
        await pilot.press("enter")
        asked = await engine.expect(p.Buy)
        assert asked == p.Buy("portrait-cat")
        engine.send(p.ShopReply(True, "Bought Cat for 100 gold (20 left) and put it on", app.state.shop))
        await settle(pilot)
        assert "Bought Cat" in " ".join(visible_lines(word))
        await highlight(pilot, app, "theme-light")  # free: worn, not bought
        await pilot.press("enter")
        assert await engine.expect(p.Wear) == p.Wear("theme-light")
        richer = replace(STATS, step=1501, gold=170)  # a level paid 50 while the Market is open
        engine.send(p.StepCompleted(1501, 1, 1.0, 1.0, 1e-3, 0.5, 100.0, richer))
        await pilot.pause(0.7)  # a frame
        await settle(pilot)
        assert "Purse: 170 gold" in " ".join(visible_lines(app.screen.query_one("#market-summary")))
        await pilot.press("$")
        await settle(pilot)
        assert not isinstance(app.screen, MarketScreen)  # $ closes it too


@pytest.mark.asyncio
async def test_the_looks_bought_are_worn_on_the_card_the_battle_and_the_colours(tmp_path: Path) -> None:
    from tui.widgets.battle import BattlePanel
    from tui.widgets.hero_card import HeroCard

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(shop=shop_info(tmp_path, earned=0)))
        assert app.theme == "textual-dark"
        card = app.tavern.query_one(HeroCard)
        assert card.border_title is not None and "the Tireless" not in str(card.border_title)
        now = shop_info(tmp_path, 1000, "title-tireless", "portrait-wizard", "theme-nord")
        engine.send(p.ShopReply(True, "Bought Nord for 100 gold (350 left) and put it on", now))
        await settle(pilot)
        assert app.theme == "nord"
        assert "DIO the Tireless" in str(card.border_title)
        battle = " ".join(visible_lines(app.tavern.query_one(BattlePanel)))
        assert "⊃━" in battle  # the wizard's wand
        assert card.stats.gold == 1000 - 150 - 400 - 100  # the purse, as the engine said
        engine.send(p.ShopReply(False, "Rosé pine costs 300 gold; the purse holds 0", now))
        await settle(pilot)
        assert any("Rosé pine costs" in str(n.message) for n in app._notifications)


@pytest.mark.asyncio
async def test_the_palette_offers_the_market_and_no_free_theme_switcher() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Open the Market" in titles and "Theme" not in titles
