"""The Market: gold (quests, hero levels) buys looks only; the purse is earned − spent,
kept across restarts and resumes; refusals say why (rules, then a real worker over a Pipe)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.game.progress import GOLD_PER_LEVEL, Progress
from engine.game.shop import BY_ID, DEFAULT_WORN, WARES, Shop
from engine.protocol import messages as p
from tests.conftest import make_hero, run_engine


def test_free_wares_are_owned_and_worn_from_the_start(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop.json")
    info = shop.info(earned=0)
    assert info.purse == 0 and len(info.wares) == len(WARES)
    assert all(w.owned == (w.price == 0) for w in info.wares)
    assert {w.id for w in info.wares if w.worn} == set(DEFAULT_WORN.values())
    assert info.worn("theme") == "textual-dark" and info.worn("title") == ""


def test_buying_pays_once_and_wears_it(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop.json")
    ok, why = shop.buy("portrait-cat", earned=60, step=5)
    assert not ok and "costs 100 gold; the purse holds 60" in why
    ok, why = shop.buy("portrait-cat", earned=160, step=5)
    assert ok and "60 left" in why, why
    assert shop.purse(160) == 60 and shop.info(160).worn("portrait") == "cat"
    ok, why = shop.buy("portrait-cat", earned=160, step=6)  # already yours: worn, not paid again
    assert ok and shop.purse(160) == 60 and why.startswith("Wearing")
    again = Shop(tmp_path / "shop.json")  # a restart reads the same purchases
    assert again.spent == 100 and again.looks()["portrait"] == "cat"


def test_refusals_say_why(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop.json")
    assert shop.wear("theme-nord") == (False, "Nord is not yours yet: it costs 100 gold")
    assert shop.buy("sword-of-loss", earned=10_000, step=1) == (False, "The Market sells no 'sword-of-loss'")
    assert shop.wear("theme-light")[0] and shop.looks()["theme"] == "textual-light"  # free: just worn


def test_a_resume_from_older_loot_never_refunds_a_purchase(tmp_path: Path) -> None:
    shop = Shop(tmp_path / "shop.json")
    assert shop.buy("title-tireless", earned=200, step=40)[0]
    # Loot from before the purchase restores less earned gold; the title stays bought.
    assert shop.purse(earned=100) == 0 and shop.purse(earned=250) == 100
    assert not shop.buy("title-diligent", earned=100, step=41)[0]


def test_a_broken_shop_file_falls_back_to_the_free_looks(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text(
        json.dumps({"owned": {"portrait-cat": 7, "gone": {"price": 5}}, "worn": {"theme": ["x"]}})
    )
    shop = Shop(path)
    assert shop.spent == 0 and shop.looks() == {k: BY_ID[v].look for k, v in DEFAULT_WORN.items()}
    path.write_text(json.dumps({"owned": {"theme-nord": {"price": "lots"}}, "worn": {"theme": "theme-nord"}}))
    assert Shop(path).spent == 100 and Shop(path).looks()["theme"] == "nord"  # the catalogue's price


def test_each_hero_level_pays_gold() -> None:
    progress = Progress(xp_per_level=3)
    for _ in range(7):
        progress.record_step(1.0, 10)
    assert progress.level == 2 and progress.gold == 2 * GOLD_PER_LEVEL
    assert progress.stats(spent=30).gold == 2 * GOLD_PER_LEVEL - 30


def test_the_engine_sells_to_every_ui_and_keeps_it_across_a_restart(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, xp_per_level=10)
    driver, worker, thread = run_engine(save, config)
    try:
        first = driver.hello()
        assert first.shop.purse == 0 and first.shop.worn("portrait") == "dio"
        driver.send(p.Buy("portrait-cat"))
        refused = driver.wait_for(p.ShopReply)
        assert not refused.ok and "costs 100 gold" in refused.message
        while driver.wait_for(p.StepCompleted).stats.level < 2:  # two levels: 100 gold
            pass
        driver.send(p.Pause())
        driver.wait_for(p.Paused)
        earned = worker.progress.gold
        driver.send(p.Buy("portrait-cat"))
        bought = driver.wait_for(p.ShopReply)
        assert bought.ok, bought.message
        assert bought.shop.purse == earned - 100 and bought.shop.worn("portrait") == "cat"
        status = json.loads(save.status.read_text())
        assert status["gold"] == earned - 100 and status["gold_earned"] == earned
        assert status["looks"]["portrait"] == "cat"
        driver.send(p.Resume())
        assert driver.wait_for(p.StepCompleted).stats.gold == worker.progress.gold - 100
    finally:
        worker.request_stop("test over")
        thread.join(60)
    driver, worker, thread = run_engine(save, config)  # a new engine on the same save
    try:
        again = driver.hello()
        assert again.shop.worn("portrait") == "cat" and again.stats.gold == worker.progress.gold - 100
    finally:
        worker.request_stop("test over")
        thread.join(60)


def test_a_malformed_buy_is_refused_by_the_protocol() -> None:
    assert p.command_problem(p.Buy("title-diligent")) is None
    assert "Buy.ware cannot be int" in (p.command_problem(p.Buy(3)) or "")  # type: ignore[arg-type]
