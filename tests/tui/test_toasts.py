"""A burst of news does not cover the screen: toasts wait their turn, errors first."""

from __future__ import annotations

import pytest

from tests.tui.conftest import FakeEngine, settle, snapshot, start
from tui.app import RealmApp
from tui.toasts import MAX_WAITING, Toast, ToastQueue


def news(text: str, severity: str = "information", timeout: float = 5.0) -> Toast:
    return Toast(text, "", severity, timeout)  # type: ignore[arg-type]


def test_a_burst_waits_for_room_and_an_error_goes_before_plain_news() -> None:
    queue = ToastQueue()
    rows = 24  # room for two at 80×24
    shown = [t.message for n in range(4) for t in queue.offer(news(f"news {n}"), 0.0, rows)]
    assert shown == ["news 0", "news 1"]
    assert queue.offer(news("broken", "error"), 1.0, rows) == []
    assert queue.next_change() == 5.0  # when the first toast goes
    assert [t.message for t in queue.due(5.0, rows)] == ["broken", "news 2"]
    assert [t.message for t in queue.due(10.0, rows)] == ["news 3"]
    assert queue.next_change() is None


def test_a_taller_screen_has_more_room() -> None:
    queue = ToastQueue()
    shown = [t for n in range(8) for t in queue.offer(news(f"news {n}"), 0.0, 60)]
    assert len(shown) == 6


def test_news_past_a_short_queue_is_summed_up_in_one_toast_never_an_error() -> None:
    queue = ToastQueue()
    for n in range(2 + MAX_WAITING + 3):
        queue.offer(news(f"news {n}"), 0.0, 24)
    queue.offer(news("disk full", "error"), 0.0, 24)
    assert len(queue.waiting) == MAX_WAITING and queue.waiting[0].message == "disk full"
    seen = []
    now = 0.0
    while queue.next_change() is not None:
        now = queue.next_change() or now
        seen += [t.message for t in queue.due(now, 24)]
    assert "disk full" in seen
    assert seen[-1] == "4 more pieces of news: l opens the log book"
    assert len(seen) == MAX_WAITING + 1


@pytest.mark.asyncio
async def test_the_game_shows_a_burst_a_few_at_a_time() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot())
        for n in range(6):
            app.notify(f"news {n}", timeout=1.5)
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["news 0", "news 1"]
        seen = {"news 0", "news 1"}
        for _ in range(300):  # the rest follow as the first go, never more than two at once
            await settle(pilot, 1)
            shown = [n.message for n in app._notifications]
            assert len(shown) <= 2, shown
            seen.update(shown)
            if "news 5" in seen:
                break
        assert seen == {f"news {n}" for n in range(6)}


@pytest.mark.asyncio
async def test_toasts_stand_clear_of_where_the_player_types() -> None:
    from textual.widgets._toast import Toast as ToastWidget
    from textual.widgets._toast import ToastRack

    from tui.screens.oracle import OracleScreen

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await start(pilot, engine, snapshot())
        app.notify("news on the tavern")
        await settle(pilot)
        tavern_toast = app.screen.get_child_by_type(ToastRack).query_one(ToastWidget).region
        assert tavern_toast.y > 24 // 2  # the Tavern keeps Textual's place: bottom right
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, OracleScreen)
        app.notify("news over the oracle")
        await settle(pilot)
        toast = app.screen.get_child_by_type(ToastRack).query_one(ToastWidget).region
        prompt = app.screen.query_one("#oracle-prompt").region
        assert toast.height > 0 and not toast.overlaps(prompt), (toast, prompt)
