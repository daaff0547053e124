"""A campaign in the save folder: checked, copied in, read back, left. Torch-free, so
`realm campaign` can do it with DIO resting: ``python -m engine.train.campaign_files
--save-dir DIR check|start|stop|status [FILE]`` (start and stop take the engine's lock;
exit 3 when an engine holds it, and the CLI asks the engine instead). The last line
printed is one JSON object: ``{"ok", "message", "data"}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir
from engine.store.atomic import read_json, write_json, write_text
from engine.train.campaign import Campaign, CampaignError, parse_campaign
from skills.registry import all_skills

SHIPPED = Path(__file__).resolve().parent / "campaigns"
EXIT_ENGINE_RUNNING = 3


def known_skills() -> dict[str, int]:
    """Each skill id with its top level (a condition past it could never hold)."""
    return {skill.id: skill.max_level for skill in all_skills()}


def hero_suites(save: SaveDir) -> list[str]:
    return sorted(path.stem for path in (save.root / "suites").glob("*.jsonl"))


def shipped() -> list[str]:
    return sorted(path.stem for path in SHIPPED.glob("*.yaml"))


def locate(name: str) -> Path:
    """A path, or the name of a shipped campaign (``specialist``)."""
    path = Path(name).expanduser()
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in name:
        return path.absolute()
    if (SHIPPED / f"{name}.yaml").is_file():
        return SHIPPED / f"{name}.yaml"
    return path.absolute()


def check(save: SaveDir | None, source: Path) -> Campaign:
    """The campaign in ``source``, checked against this install's skills, the quest files
    it names and (for a hero) the hero's suites. CampaignError names the line."""
    text = source.read_text(encoding="utf-8-sig")
    return parse_campaign(text, known_skills(), source.parent, hero_suites(save) if save else None)


def install(save: SaveDir, source: Path, replace_finished: bool = False) -> Campaign:
    """Check a campaign file and keep it in the save: the file and its quests are copied
    (campaign/DATE/), so the campaign survives their moving away. A finished campaign it
    replaces is kept aside first. Raises CampaignError (naming the line) or OSError."""
    campaign = check(save, source)
    if replace_finished:
        leave(save)
    folder = _unused(save.campaign_files / time.strftime("%Y%m%d-%H%M%S"))
    folder.mkdir(parents=True)
    write_text(folder / source.name, source.read_text(encoding="utf-8-sig"))
    phases = []
    for i, phase in enumerate(campaign.phases):
        copies = []
        for quest in phase.quests:
            copy = folder / f"phase{i + 1}-{Path(quest).name}"
            shutil.copyfile(quest, copy)
            copies.append(str(copy))
        phases.append(replace(phase, quests=tuple(copies)))
    kept = replace(campaign, phases=tuple(phases))
    write_json(
        save.campaign,
        {
            "campaign": kept.to_dict(),
            "source": str(source),
            "file": str(folder / source.name),
            "started_at": time.time(),
        },
    )
    return kept


class CampaignUnreadable(ValueError):
    """campaign.json is damaged: the engine trains without it; `realm campaign stop` sets it aside."""


def stored(save: SaveDir) -> Campaign | None:
    try:
        data = read_json(save.campaign, None)
        if not isinstance(data, dict) or "campaign" not in data:
            return None
        return Campaign.from_dict(data["campaign"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CampaignUnreadable(
            f"campaign.json cannot be read ({exc}); `realm campaign stop` sets it aside"
        ) from None


def leave(save: SaveDir) -> None:
    """The campaign file is kept aside (campaign/ended-….json), never deleted."""
    if save.campaign.exists():
        save.campaign_files.mkdir(parents=True, exist_ok=True)
        save.campaign.rename(_unused(save.campaign_files / f"ended-{time.strftime('%Y%m%d-%H%M%S')}.json"))


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``…: two in the same second never overwrite."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def begins_message(campaign: Campaign, where: str) -> str:
    first = campaign.phases[0]
    return (
        f"Campaign {campaign.name}: {counted(len(campaign.phases), 'phase')}; phase 1 ({first.name}, "
        f"{first.length}) begins {where}"
    )


def resting_status(save: SaveDir) -> dict[str, Any] | None:
    """With DIO resting: what the engine last wrote (hero.json), or the campaign not yet
    begun (phases listed, none started)."""
    campaign = stored(save)
    if campaign is None:
        return None
    written = save.read_status().get("campaign")
    if isinstance(written, dict) and written.get("name") == campaign.name:
        return written
    phases = [
        {
            "name": ph.name,
            "state": "next",
            "skills": " · ".join(f"{s.upper()} ×{w:g}" for s, w in ph.skills.items()),
            "length": ph.length,
            "schedule": "",
            "rehearsal": campaign.rehearsal_of(i),
            "quests": len(ph.quests),
            "start_step": None,
            "end_step": None,
            "progress": None,
            "gate": "",
            "loot": "",
            "result": "",
        }
        for i, ph in enumerate(campaign.phases)
    ]
    return {
        "name": campaign.name,
        "phases": phases,
        "current": 0,
        "finished": False,
        "description": campaign.description,
        "when_done": campaign.when_done,
        "pending": True,
    }


def carry_out(save: SaveDir, action: str, file: str | None) -> tuple[bool, str, Any]:
    if action == "status":
        return True, "", resting_status(save)
    if action == "check":
        assert file is not None
        source = locate(file)
        campaign = check(save if save.config.exists() else None, source)
        return (
            True,
            f"{source.name}: campaign {campaign.name} is valid, {counted(len(campaign.phases), 'phase')}",
            None,
        )
    if action == "start":
        save.create()  # a hero not yet trained: its engine follows the campaign from step 0
    lock = save.try_lock()
    if lock is None:
        raise EngineRunning
    try:
        if action == "stop":
            try:
                followed = stored(save)
            except CampaignUnreadable:
                leave(save)  # kept aside in campaign/, like any campaign left
                return (
                    True,
                    "Set the unreadable campaign.json aside (in campaign/): DIO trains its own skills",
                    None,
                )
            if followed is None:
                return False, "DIO follows no campaign", None
            leave(save)
            return True, f"Left campaign {followed.name}: DIO trains its own skills from the next start", None
        assert file is not None
        current = stored(save)
        finished = bool((resting_status(save) or {}).get("finished"))
        if current is not None and not finished:
            return False, f"DIO follows campaign {current.name}: `realm campaign stop` first", None
        campaign = install(save, locate(file), replace_finished=finished)
        return True, begins_message(campaign, "when DIO next trains (`realm play` or `realm train`)"), None
    finally:
        lock.close()


class EngineRunning(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.train.campaign_files")
    parser.add_argument("--save-dir", required=True, type=Path)
    parser.add_argument("action", choices=("check", "start", "stop", "status"))
    parser.add_argument("file", nargs="?")
    args = parser.parse_args(argv)
    save = SaveDir(args.save_dir)
    try:
        ok, message, data = carry_out(save, args.action, args.file)
    except EngineRunning:
        return EXIT_ENGINE_RUNNING
    except CampaignUnreadable as exc:
        ok, message, data = False, str(exc), None
    except CampaignError as exc:
        name = Path(args.file).name if args.file else "campaign"
        ok, message, data = False, exc.about(name), None
    except OSError as exc:
        ok, message, data = False, f"cannot read {args.file}: {exc.strerror or exc}", None
    print(json.dumps({"ok": ok, "message": message, "data": data}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
