"""The returning hero's first frame: what the engine last wrote into hero.json (stats,
the newest loot), shown before the engine has woken up, so the card never reads "Level 0, step 0,
no loot" for a hero that has thousands of steps. The engine's snapshot replaces all of it
once it connects."""

from __future__ import annotations

import logging
from typing import Any

from engine.protocol import messages as p
from engine.protocol.savedir import SaveDir
from tui.state import GameState

log = logging.getLogger("tui.saved")


def saved_state(save: SaveDir) -> GameState:
    """A GameState from the save folder alone; an empty one for a new hero. Never raises:
    a half-written or unreadable file only means a plainer first frame."""
    state = GameState()
    try:
        status = save.read_status()
        config = save.read_config()
    except Exception as exc:  # a first frame is not worth a crash
        log.info("no saved state: %s", exc)
        return state
    state.hero = str(status.get("hero") or config.get("name") or save.name)
    state.model = str(status.get("model") or "")
    state.device = str(status.get("device") or "")
    state.stats = stats_from(status, config)
    state.loot = saved_loot(status)
    looks = status.get("looks")
    if isinstance(looks, dict):  # the title, portrait and theme bought in the Market
        state.looks = {str(k): str(v) for k, v in looks.items() if isinstance(v, str)}
    if state.stats.train_loss is not None and state.stats.step:
        state.train_losses.append((state.stats.step, state.stats.train_loss))
    return state


def stats_from(status: dict[str, Any], config: dict[str, Any]) -> p.HeroStats:
    def number(key: str) -> float | None:
        value = status.get(key)
        return float(value) if isinstance(value, int | float) else None

    grade = status.get("grade")
    xp_per_level = int((config.get("game") or {}).get("xp_per_level") or p.HeroStats().xp_per_level)
    return p.HeroStats(
        step=int(status.get("step") or 0),
        level=int(status.get("level") or 0),
        xp_per_level=xp_per_level,
        acc=number("acc"),
        gold=int(status.get("gold") or 0),
        train_loss=number("loss"),
        val_loss=number("val_loss"),
        grade=f"{grade['letter']} {grade['score']}" if isinstance(grade, dict) and "letter" in grade else "",
        atk=1 / v if (v := number("loss")) else 0.0,
        defense=1 / v if (v := number("val_loss")) else 0.0,
    )


def saved_loot(status: dict[str, Any]) -> list[p.LootInfo]:
    """The newest loot as the engine last wrote them into hero.json (the UI never reads
    the ledger itself: the engine is the save folder's one reader-writer of it)."""
    try:
        return list(p.vault_listed_from_dict({"loot": status.get("recent_loot") or []}).loot)
    except (TypeError, ValueError, KeyError) as exc:  # an older or damaged hero.json
        log.info("no saved loot: %s", exc)
        return []
