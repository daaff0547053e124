"""The campaign map at 80×24 against a fake engine: phases, the current one's gate,
news of a finished phase, starting and leaving a campaign, the away summary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.protocol import messages as p
from tests.tui.conftest import FakeEngine, settle, snapshot, start
from tests.tui.test_app import visible_lines
from tui.app import RealmApp, away_text
from tui.widgets.status_bar import StatusBar

GENERAL = p.PhaseInfo(
    "general", "done", "BIN ×1 · SY ×1", "600 steps", "lr 2e-03 cosine, warmup 50", 0.0,
    start_step=0, end_step=600, progress=1.0, loot="step-000600", result="600 steps · BIN 91% · SY 40%",
)  # fmt: skip
SPECIAL = p.PhaseInfo(
    "specialist", "current", "SY ×1", "until SY L3 (at most 2,400 steps)", "lr 1e-03 constant, warmup 20",
    0.2, start_step=600, progress=0.1, gate="SY L2 (needs L3)",
)  # fmt: skip
CAMPAIGN = p.CampaignInfo("specialist", (GENERAL, SPECIAL), current=1, description="general, then SY")


def shown_text(app: RealmApp) -> str:
    """What the summary and the detail lines show on screen (wrapped at 80 columns)."""
    parts = [visible_lines(app.screen.query_one(f"#campaign-{name}")) for name in ("summary", "detail")]
    return "\n".join(line for lines in parts for line in lines)


@pytest.mark.asyncio
async def test_campaign_map_shows_phases_and_follows_the_news() -> None:
    from tui.screens.campaign import CampaignScreen
    from tui.widgets.keyed_table import KeyedTable

    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine, snapshot(campaign=CAMPAIGN))
        bar = app.tavern.query_one(StatusBar)
        assert "🗺 specialist 2/2 · ARI L2" in bar.detail  # the phase, before what DIO trains on
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        table = app.screen.query_one(KeyedTable)
        assert [table.get_row_at(i)[0] for i in range(2)] == ["✓", "▶"]
        assert table.cursor_row == 1  # it opens on the phase being trained
        screen = shown_text(app)
        assert "specialist (phase 2 of 2)" in screen
        assert "SY L2 (needs L3)" in screen  # the gate, in the detail below the map
        assert "20% of examples rehearse earlier phases" in screen
        done = replace(
            CAMPAIGN,
            phases=(
                GENERAL,
                replace(SPECIAL, state="done", end_step=900, loot="step-000900", result="gate passed"),
            ),
            finished=True,
        )
        engine.send(p.CampaignUpdated(done, "Phase specialist complete (gate passed: SY L3) at step 900"))
        await settle(pilot)
        assert "specialist (complete)" in shown_text(app)
        toasts = {n.title: n.message for n in app._notifications}
        assert toasts["🗺 Campaign"].startswith("Phase specialist complete")


@pytest.mark.asyncio
async def test_campaign_map_starts_and_leaves_a_campaign() -> None:
    engine = FakeEngine()
    app = RealmApp(engine.connector)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, engine)
        await pilot.press("c")
        await settle(pilot)
        assert "DIO follows no campaign" in shown_text(app)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("enter")  # the shipped one is offered
        sent = await engine.expect(p.StartCampaign)
        assert sent.path == "specialist"
        engine.send(p.CampaignReply(False, "campaign.yaml line 3: unknown key"))
        await settle(pilot)
        assert any("line 3" in n.message for n in app._notifications)
        engine.send(p.CampaignUpdated(CAMPAIGN, "Campaign specialist: 2 phases"))
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await engine.expect(p.EndCampaign)


def test_away_text_names_the_phases_passed() -> None:
    away = p.AwaySummary(
        600, 900, 1, (), False, phases=("general (600 steps)",), interventions=1, grade="B 84"
    )
    text = away_text(away)
    assert "finished campaign phase general (600 steps)" in text and "watchdog stepped in 1×" in text
    assert "run grade B 84" in text
