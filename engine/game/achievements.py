"""Achievements: milestones and good practice, earned from what the engine already says
(its events) and kept in saves/HERO/achievements.json. They never change training.

Each rule reads one event; the book remembers the step and time of each unlock, so a
resumed engine never unlocks twice. The engine is the file's only writer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.store.atomic import read_json_kept, write_json


@dataclass(frozen=True)
class Achievement:
    id: str
    title: str
    how: str  # how it is earned, shown while locked too


ALL = (
    Achievement("first-loot", "Treasure hunter", "Save a first loot (a checkpoint)"),
    Achievement("first-eval", "Tested", "Finish a first skill eval"),
    Achievement("first-pass", "Promising", "Score at a skill's threshold in an eval"),
    Achievement("first-skill-level", "Apprentice", "Pass a skill's gate: its next level opens"),
    Achievement("hero-level-1", "Seasoned", "Reach hero level 1 (1,000 steps)"),
    Achievement("hero-level-10", "Veteran", "Reach hero level 10"),
    Achievement("first-quest", "Questing", "Finish a first quest (your own training file)"),
    Achievement("quests-10", "Guild regular", "Finish 10 quests"),
    Achievement("sparring-fixed", "Learns from mistakes", "A sparring re-test fixes at least one mistake"),
    Achievement("own-suite", "Own yardstick", "Run one of your own eval suites"),
    Achievement(
        "beat-base",
        "Student surpasses",
        "Score above the base model on your own suite (realm evals run SUITE --loot base, then on loot)",
    ),
    Achievement("campaign-phase", "Strategist", "Finish a campaign phase (realm campaign start specialist)"),
    Achievement("campaign-done", "Campaign won", "Finish every phase of a campaign"),
    Achievement("survived-crash", "Unbreakable", "Resume after the engine died (kill -9, a power cut)"),
    Achievement(
        "watchdog", "Saved by the watchdog", "The watchdog rolls a bad step back and training goes on"
    ),
)
BY_ID = {a.id: a for a in ALL}
FIXED = re.compile(r"fixed (\d+) of \d+")


class AchievementBook:
    def __init__(self, path: Path, step: Callable[[], int]) -> None:
        self.path = path
        self.step = step
        data, self.warning = read_json_kept(path)
        data = data if isinstance(data, dict) else {}
        unlocked = data.get("unlocked")
        self.unlocked: dict[str, dict[str, Any]] = dict(unlocked) if isinstance(unlocked, dict) else {}
        self.quests_done = int(data.get("quests_done") or 0)

    def infos(self) -> tuple[p.AchievementInfo, ...]:
        return tuple(
            p.AchievementInfo(a.id, a.title, a.how, self.unlocked.get(a.id, {}).get("step")) for a in ALL
        )

    def earned(self, event: Any) -> list[str]:
        """The achievements this event unlocks now (each at most once, ever)."""
        found = [aid for aid in self._rules(event) if aid not in self.unlocked]
        for aid in found:
            self.unlocked[aid] = {"step": self.step(), "time": time.time()}
        if found or isinstance(event, p.QuestCompleted):
            self.save()
        return found

    def unlock(self, aid: str) -> list[str]:
        """An achievement the engine finds itself (a crash survived at start)."""
        return self.earned(_Direct(aid))

    def save(self) -> None:
        write_json(self.path, {"unlocked": self.unlocked, "quests_done": self.quests_done})

    def _rules(self, event: Any) -> list[str]:
        match event:
            case _Direct(aid=aid):
                return [aid]
            case p.CheckpointSaved():
                return ["first-loot"]
            case p.EvalCompleted(skill=skill):
                passed = (
                    skill is not None and event.accuracy is not None and event.accuracy >= skill.threshold
                )
                return ["first-eval", *(["first-pass"] if passed else [])]
            case p.SkillLevelledUp():
                return ["first-skill-level"]
            case p.LevelledUp(level=level):
                return ["hero-level-1"] + (["hero-level-10"] if level >= 10 else [])
            case p.QuestCompleted():
                self.quests_done += 1
                return ["first-quest"] + (["quests-10"] if self.quests_done >= 10 else [])
            case p.TaskUpdated(task=task) if task.state == "done":
                if task.kind == "suite":
                    return ["own-suite"]
                fixed = FIXED.search(task.result) if task.kind == "retest" else None
                return ["sparring-fixed"] if fixed and int(fixed.group(1)) > 0 else []
            case p.WatchdogIntervened(kind="rollback"):
                return ["watchdog"]
            case p.CampaignUpdated(campaign=campaign) if campaign is not None:
                phases_done = any(phase.state == "done" for phase in campaign.phases)
                return (["campaign-phase"] if phases_done else []) + (
                    ["campaign-done"] if campaign.finished else []
                )
        return []


@dataclass(frozen=True)
class _Direct:
    aid: str
