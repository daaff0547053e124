"""Campaigns: training in phases, read from a YAML file, with a rehearsal buffer.

A campaign file names phases in order. Each phase says what DIO trains on (skills with
weights, quest files), for how long (``steps``, ``epochs`` of its quests, or ``until``
a gate: skill levels reached, eval suites passed), its learning rate and schedule, and
its rehearsal share: that share of the examples is drawn from the earlier phases
(their skills at DIO's current level, and their quests' rows), so the specialist does
not forget the generalist. The format is documented in the README and in
``realm campaign --help`` (tui/cli/campaign.py).

This module is pure Python (yaml, no torch): ``parse_campaign`` validates a file and
names the line of every problem; ``CampaignState`` is the progress saved with every
loot, so a killed engine resumes in the right phase at the right row. The worker's side
is ``engine/run/campaign_work.py``.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.protocol.config import SCHEDULES
from engine.quests.format import QuestRejected, read_quest

WHEN_DONE = ("continue", "pause", "stop")
MAX_PHASES = 32


class CampaignError(ValueError):
    """A campaign file that cannot be used; ``line`` (1-based) names where, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.problem = message

    def about(self, file_name: str) -> str:
        """The refusal as the user reads it: "FILE line 3: …", or "FILE: …" without a line."""
        return f"{file_name} {self}" if self.line else f"{file_name}: {self}"


@dataclass(frozen=True)
class Condition:
    """One part of a phase's gate: a skill level reached, or a suite score."""

    skill: str = ""
    level: int = 0
    suite: str = ""
    score: float = 0.0

    @property
    def label(self) -> str:
        if self.skill:
            return f"{self.skill.upper()} L{self.level}"
        return f"{self.suite} ≥ {self.score:.0%}"


@dataclass(frozen=True)
class Phase:
    name: str
    skills: dict[str, float] = field(default_factory=dict)
    quests: tuple[str, ...] = ()  # absolute paths once the campaign is started
    steps: int = 0
    epochs: int = 0
    until: tuple[Condition, ...] = ()
    max_steps: int = 0
    lr: float | None = None
    schedule: str = "cosine"
    warmup_steps: int | None = None
    min_lr_ratio: float | None = None
    decay_steps: int | None = None
    rehearsal: float | None = None  # None: the campaign's default
    evals: tuple[str, ...] = ()

    @property
    def length(self) -> str:
        """How long, in words ("600 steps", "2 epochs of 1 quest", "until SY L3")."""
        if self.steps:
            return f"{self.steps:,} steps"
        if self.epochs:
            n = len(self.quests)
            return f"{self.epochs} epoch{'s' * (self.epochs > 1)} of {n} quest{'s' * (n > 1)}"
        cap = f" (at most {self.max_steps:,} steps)" if self.max_steps else ""
        return "until " + " and ".join(c.label for c in self.until) + cap


@dataclass(frozen=True)
class Campaign:
    name: str
    phases: tuple[Phase, ...]
    description: str = ""
    rehearsal: float = 0.2
    when_done: str = "continue"

    @property
    def digest(self) -> str:
        """Names this campaign in loot metadata (a loot of another campaign is not resumed as it)."""
        return hashlib.sha256(repr(self.to_dict()).encode()).hexdigest()[:16]

    def skill_ids(self) -> list[str]:
        """Every skill any phase trains, in order of first appearance."""
        return list(dict.fromkeys(s for phase in self.phases for s in phase.skills))

    def rehearsal_of(self, index: int) -> float:
        """Phase ``index``'s share of earlier phases (the first has none to draw from)."""
        if index == 0:
            return 0.0
        share = self.phases[index].rehearsal
        return self.rehearsal if share is None else share

    def suites(self) -> list[str]:
        names = [c.suite for phase in self.phases for c in phase.until if c.suite]
        return list(dict.fromkeys([*names, *(s for phase in self.phases for s in phase.evals)]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Campaign:
        phases = []
        for row in data["phases"]:
            row = dict(row)
            row["quests"] = tuple(row.get("quests", ()))
            row["evals"] = tuple(row.get("evals", ()))
            row["until"] = tuple(Condition(**c) for c in row.get("until", ()))
            phases.append(Phase(**row))
        return cls(
            name=data["name"],
            phases=tuple(phases),
            description=data.get("description", ""),
            rehearsal=float(data.get("rehearsal", 0.2)),
            when_done=data.get("when_done", "continue"),
        )


# ---------------------------------------------------------------------- progress


@dataclass
class PhaseRecord:
    """A finished phase: where it ran and how it ended."""

    phase: int
    name: str
    start: int
    end: int
    loot: str
    reason: str  # "600 steps", "gate passed: SY L3", "max_steps reached", "quests done"
    ended_at: float
    scores: dict[str, float] = field(default_factory=dict)  # skill accuracies at its end


@dataclass
class CampaignState:
    """The campaign's progress, saved with every loot (``to_dict``)."""

    campaign: str  # Campaign.digest
    phase: int = 0
    phase_start: int = 0  # the step the current phase began at
    quests_queued: bool = False  # the current phase's quests are on the board
    finished: bool = False
    history: list[PhaseRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignState:
        history = [PhaseRecord(**row) for row in data.get("history", [])]
        return cls(
            campaign=str(data["campaign"]),
            phase=int(data.get("phase", 0)),
            phase_start=int(data.get("phase_start", 0)),
            quests_queued=bool(data.get("quests_queued", False)),
            finished=bool(data.get("finished", False)),
            history=history,
        )


# ---------------------------------------------------------------------- reading a file

TOP_KEYS = ("name", "description", "rehearsal", "when_done", "phases")
PHASE_KEYS = tuple(f for f in Phase.__dataclass_fields__)
CONDITION_KEYS = ("skill", "level", "suite", "score")


class _Lines:
    """Line numbers of every key and item, by path (yaml's node marks)."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
                if name in seen:
                    raise CampaignError(f"{name!r} is given twice", key.start_mark.line + 1)
                seen.add(name)
                key_path = (*path, name)
                self.lines[key_path] = key.start_mark.line + 1
                self._walk(value, key_path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def at(self, *path: Any) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)


def parse_campaign(
    text: str,
    known_skills: dict[str, int] | None = None,
    base: Path | None = None,
    suites: list[str] | None = None,
) -> Campaign:
    """A validated campaign; CampaignError names the line of the first problem.
    ``known_skills``: the skill ids this install has, with their top level; ``base``: the file's folder (quest
    paths become absolute and each quest file is read and checked); ``suites``: the
    hero's eval suites. None: not checked."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise CampaignError(
            f"not valid YAML: {exc.problem or exc}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise CampaignError(f"not valid YAML: {exc}") from None
    lines = _Lines(node)
    return _Reader(lines, known_skills, base, suites).campaign(data)


class _Reader:
    def __init__(
        self, lines: _Lines, known_skills: dict[str, int] | None, base: Path | None, suites: list[str] | None
    ) -> None:
        self.lines = lines
        self.known = known_skills
        self.base = base
        self.suites = suites

    def fail(self, message: str, *path: Any) -> CampaignError:
        return CampaignError(message, self.lines.at(*path))

    def keys(self, data: Any, allowed: tuple[str, ...], what: str, *path: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(f"{what} must be a mapping of keys (key: value)", *path)
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
                raise self.fail(f"{what}: unknown key {key!r}{hint}", *path, key)
        return data

    def campaign(self, data: Any) -> Campaign:
        if data is None:
            raise CampaignError("the file is empty: a campaign needs a name and phases")
        data = self.keys(data, TOP_KEYS, "the campaign")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail("the campaign needs a name (name: …)", "name")
        phases = data.get("phases")
        if not isinstance(phases, list) or not phases:
            raise self.fail("phases must be a list with at least one phase", "phases")
        if len(phases) > MAX_PHASES:
            raise self.fail(f"at most {MAX_PHASES} phases", "phases")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description must be text", "description")
        rehearsal = self.share(data.get("rehearsal", 0.2), "rehearsal", "rehearsal")
        when_done = data.get("when_done", "continue")
        if when_done not in WHEN_DONE:
            raise self.fail(
                f"when_done must be one of {', '.join(WHEN_DONE)}, not {when_done!r}", "when_done"
            )
        read = [self.phase(row, i) for i, row in enumerate(phases)]
        names = [p.name for p in read]
        for i, phase_name in enumerate(names):
            if names.index(phase_name) != i:
                raise self.fail(f"two phases are called {phase_name!r}", "phases", i, "name")
        return Campaign(name.strip(), tuple(read), description.strip(), rehearsal, when_done)

    def phase(self, row: Any, i: int) -> Phase:
        where = ("phases", i)
        label = f"phase {i + 1}"
        if isinstance(row, dict) and isinstance(row.get("name"), str):
            label += f" ({row['name']})"
        row = self.keys(row, PHASE_KEYS, label, *where)
        name = row.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(f"{label} needs a name", *where)
        skills = self.skills(row.get("skills", {}), label, where)
        quests = self.names(row.get("quests", []), f"{label}: quests", (*where, "quests"))
        quests = [self.quest(q, label, (*where, "quests", j)) for j, q in enumerate(quests)]
        if not skills and not quests:
            raise self.fail(f"{label} trains on nothing: give it skills, quests or both", *where)
        lengths = [k for k in ("steps", "epochs", "until") if k in row]
        if len(lengths) != 1:
            given = f"it gives {', '.join(lengths)}" if lengths else "it gives none"
            raise self.fail(f"{label} needs exactly one of steps, epochs or until ({given})", *where)
        until = self.conditions(row.get("until", []), label, (*where, "until")) if "until" in row else ()
        if "until" in row and not until:
            raise self.fail(f"{label}: until needs at least one condition", *where, "until")
        epochs = self.count(row, "epochs", label, where)
        if epochs and not quests:
            raise self.fail(
                f"{label}: epochs counts passes over its quests, and it has none", *where, "epochs"
            )
        max_steps = self.count(row, "max_steps", label, where)
        if max_steps and not until:
            raise self.fail(
                f"{label}: max_steps caps an until phase (use steps for a fixed length)", *where, "max_steps"
            )
        schedule = row.get("schedule", "cosine")
        if schedule not in SCHEDULES:
            raise self.fail(
                f"{label}: schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}",
                *where,
                "schedule",
            )
        lr = self.number(row, "lr", label, where)
        if lr is not None and not 0 < lr < 1:
            raise self.fail(f"{label}: lr must be in (0, 1), not {lr}", *where, "lr")
        min_lr = self.number(row, "min_lr_ratio", label, where)
        if min_lr is not None and not 0 <= min_lr <= 1:
            raise self.fail(f"{label}: min_lr_ratio must be in [0, 1]", *where, "min_lr_ratio")
        rehearsal = (
            self.share(row["rehearsal"], f"{label}: rehearsal", *where, "rehearsal")
            if "rehearsal" in row
            else None
        )
        return Phase(
            name=name.strip(),
            skills=skills,
            quests=tuple(quests),
            steps=self.count(row, "steps", label, where),
            epochs=epochs,
            until=until,
            max_steps=max_steps,
            lr=lr,
            schedule=schedule,
            warmup_steps=self.count(row, "warmup_steps", label, where, zero_ok=True)
            if "warmup_steps" in row
            else None,
            min_lr_ratio=min_lr,
            decay_steps=self.count(row, "decay_steps", label, where) if "decay_steps" in row else None,
            rehearsal=rehearsal,
            evals=tuple(
                self.suite(name, label, (*where, "evals", j))
                for j, name in enumerate(
                    self.names(row.get("evals", []), f"{label}: evals", (*where, "evals"))
                )
            ),
        )

    def quest(self, name: str, label: str, path: tuple[Any, ...]) -> str:
        """The quest file's absolute path, once it is read and valid (when checking files)."""
        if self.base is None:
            return name
        file = Path(name).expanduser()
        file = file if file.is_absolute() else self.base / file
        if not file.is_file():
            raise self.fail(
                f"{label}: quest file {name} not found (paths are relative to the campaign file)", *path
            )
        try:
            read_quest(file)
        except QuestRejected as exc:
            raise self.fail(f"{label}: quest {name} refused: {exc}", *path) from None
        return str(file.resolve())

    def suite(self, name: str, label: str, path: tuple[Any, ...]) -> str:
        if self.suites is not None and name not in self.suites:
            known = ", ".join(self.suites) or "none yet"
            raise self.fail(
                f"{label}: no eval suite {name!r} for this hero (suites: {known}); add it with `realm evals add FILE`",
                *path,
            )
        return name

    def skills(self, data: Any, label: str, where: tuple[Any, ...]) -> dict[str, float]:
        path = (*where, "skills")
        if isinstance(data, list):  # [bin, sy]: equal weights
            data = dict.fromkeys(data, 1.0)
        if not isinstance(data, dict):
            raise self.fail(f"{label}: skills must map skill ids to weights, e.g. {{bin: 1.0}}", *path)
        out: dict[str, float] = {}
        for skill, weight in data.items():
            skill_id = str(skill).lower()
            if self.known is not None and skill_id not in self.known:
                raise self.fail(
                    f"{label}: unknown skill {skill!r} (known: {', '.join(self.known)})", *path, skill
                )
            value = _float(weight)
            if value is None or value <= 0:
                raise self.fail(
                    f"{label}: the weight of {skill} must be a number > 0, not {weight!r}", *path, skill
                )
            out[skill_id] = value
        return out

    def names(self, data: Any, what: str, path: tuple[Any, ...]) -> list[str]:
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(x, str) and x.strip() for x in data):
            raise self.fail(f"{what} must be a list of names", *path)
        return [x.strip() for x in data]

    def conditions(self, data: Any, label: str, path: tuple[Any, ...]) -> tuple[Condition, ...]:
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise self.fail(f"{label}: until must be a list of conditions", *path)
        out = []
        for j, row in enumerate(data):
            row = self.keys(row, CONDITION_KEYS, f"{label}: until", *path, j)
            if "skill" in row:
                out.append(self.skill_condition(row, label, (*path, j)))
            elif "suite" in row:
                score = _float(row.get("score"))
                if score is None or not 0 < score <= 1:
                    raise self.fail(f"{label}: a suite condition needs score in (0, 1], e.g. 0.8", *path, j)
                out.append(Condition(suite=self.suite(str(row["suite"]), label, (*path, j)), score=score))
            else:
                raise self.fail(
                    f"{label}: a condition names a skill (with level) or a suite (with score)", *path, j
                )
        return tuple(out)

    def skill_condition(self, row: dict[str, Any], label: str, path: tuple[Any, ...]) -> Condition:
        skill_id = str(row["skill"]).lower()
        if self.known is not None and skill_id not in self.known:
            raise self.fail(
                f"{label}: unknown skill {row['skill']!r} (known: {', '.join(self.known)})", *path
            )
        level = row.get("level")
        if not isinstance(level, int) or isinstance(level, bool) or level < 2:
            raise self.fail(f"{label}: a skill condition needs level: N (2 or more; DIO starts at 1)", *path)
        top = self.known.get(skill_id) if self.known is not None else None
        if top is not None and level > top:  # never reached: the phase would never end
            raise self.fail(f"{label}: {skill_id} has {top} levels, so level {level} is never reached", *path)
        return Condition(skill=skill_id, level=level)

    def count(
        self, row: dict[str, Any], key: str, label: str, where: tuple[Any, ...], zero_ok: bool = False
    ) -> int:
        value = row.get(key, 0)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < 0
            or (value == 0 and key in row and not zero_ok)
        ):
            raise self.fail(
                f"{label}: {key} must be a whole number {'>= 0' if zero_ok else '> 0'}, not {value!r}",
                *where,
                key,
            )
        return value

    def number(self, row: dict[str, Any], key: str, label: str, where: tuple[Any, ...]) -> float | None:
        if key not in row:
            return None
        value = _float(row[key])
        if value is None:
            raise self.fail(f"{label}: {key} must be a number, not {row[key]!r}", *where, key)
        return value

    def share(self, value: Any, what: str, *path: Any) -> float:
        share = _float(value)
        if share is None or not 0 <= share < 1:
            raise self.fail(f"{what} must be a share in [0, 1), not {value!r}", *path)
        return share


def _float(value: Any) -> float | None:
    """A number; YAML 1.1 reads ``2e-3`` (no dot) as text, which is taken as meant."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
