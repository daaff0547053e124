"""Sparring in the engine: a task that has DIO answer fresh problems of a skill at its
current level, turns each wrong answer into the three rows of ``evals/sparring.py``,
and queues them as a high-priority quest; after that quest has trained, a task that
re-tests the exact problems DIO got wrong ("fixed 5 of 8"). Sparring quests still
queued ``sparring.max_age_steps`` after their mistakes are retired with a reason."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.evals import sparring
from engine.evals.skill_evals import answer_batches
from engine.protocol import messages as p
from engine.quests.format import QuestRejected
from engine.run.server import ClientSession
from engine.run.tasks import TaskBody
from engine.store.atomic import write_json, write_text
from engine.store.vault import main_line
from skills.base import Problem

if TYPE_CHECKING:
    from engine.run.worker import Worker

PREFIX = "spar-"


def folder(w: Worker) -> Path:
    return w.save.root / "sparring"


def spar(w: Worker, client: ClientSession, command: p.Spar) -> None:
    skills = [command.skill] if command.skill else list(w.curriculum.tracks)
    unknown = [s for s in skills if s not in w.curriculum.tracks]
    if unknown:
        known = ", ".join(w.curriculum.tracks)
        client.send(
            p.QuestReply(
                False, f"{w.config.name.upper()} does not train skill {unknown[0]!r} (skills: {known})"
            )
        )
        return
    count = command.problems or w.config.sparring.problems
    for skill_id in skills:
        w.tasks.add(
            "spar", f"sparring on {skill_id.upper()}", round_task(w, client, skill_id, count), asked=True
        )


def round_task(w: Worker, client: ClientSession, skill_id: str, count: int) -> TaskBody:
    skill = w.curriculum.skills[skill_id]
    level = w.curriculum.tracks[skill_id].level
    step = w.progress.step
    indices = sparring.problem_indices(step, count)
    problems = [skill.generate(level, i, sparring.SPLIT) for i in indices]
    answers: list[str] = []
    for batch in answer_batches(
        w.hero.model, w.renderer, problems, w.hero.device, skill.spec.max_answer_tokens
    ):
        answers += batch
        yield len(answers), count
    wrong = [(q, a) for q, a in zip(problems, answers, strict=True) if skill.score(q, a) < 1.0]
    if not wrong:
        return _tell(
            w,
            client,
            True,
            f"{w.config.name.upper()} got all {count} {skill_id.upper()} L{level} problems right: nothing to spar on",
        )
    fresh = [skill.generate(level, i + count, sparring.SPLIT) for i in indices]
    rows = sparring.unique(
        [row for k, (q, a) in enumerate(wrong) for row in sparring.rows_for(q, a, fresh[k])]
    )
    fits = sum(1 for r in rows if len(w.renderer.render(r["messages"])) <= w.config.train.seq_len)
    if fits < sparring.MIN_VALID * len(rows):
        why = f"only {fits} of {len(rows)} sparring rows fit seq_len {w.config.train.seq_len} (95% must)"
        return _tell(w, client, False, f"sparring on {skill_id.upper()} refused: {why}")
    name = f"{PREFIX}{skill_id}-step-{step:06d}"
    live = main_line(w.ledger.live_loot())
    source = folder(w) / f"{name}.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    write_text(source, sparring.quest_text(rows))
    try:
        info, _quest = w.keeper.queue.admit(source, move=False, priority="high")
    except QuestRejected as exc:
        return _tell(w, client, False, f"sparring quest refused: {exc}")
    write_json(
        folder(w) / f"{info.name}.json",
        {
            "skill": skill_id,
            "level": level,
            "step": step,
            "from_loot": live[-1]["name"] if live else None,
            "rows": len(rows),
            "problems": [q.record() for q, _ in wrong],
        },
    )
    w.keeper.board_changed()
    return _tell(
        w,
        client,
        True,
        f"Sparring: {w.config.name.upper()} missed {len(wrong)} of {count} {skill_id.upper()} L{level} problems; "
        f"{info.name} ({len(rows)} rows) is queued at high priority",
    )


def _tell(w: Worker, client: ClientSession | None, ok: bool, message: str) -> str:
    w.note(message, "info" if ok else "warning", "quest")
    if client is not None:
        client.send(p.QuestReply(ok, message))
    return message


def sidecar(w: Worker, quest: str) -> dict[str, Any] | None:
    path = folder(w) / f"{quest}.json"
    if not quest.startswith(PREFIX) or not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def after_quest(w: Worker, done: p.QuestInfo) -> None:
    """A sparring quest finished: re-test its mistakes (a task)."""
    meta = sidecar(w, done.name)
    if meta is not None:
        w.tasks.add("retest", f"re-test of {done.name}", retest_task(w, done, meta))


def retest_task(w: Worker, done: p.QuestInfo, meta: dict[str, Any]) -> TaskBody:
    skill = w.curriculum.skills.get(meta["skill"])
    if skill is None:
        return "its skill is not trained any more"
    problems: list[Problem] = [skill.problem_from_record(r) for r in meta["problems"]]
    answers: list[str] = []
    for batch in answer_batches(
        w.hero.model, w.renderer, problems, w.hero.device, skill.spec.max_answer_tokens
    ):
        answers += batch
        yield len(answers), len(problems)
    fixed = sum(1 for q, a in zip(problems, answers, strict=True) if skill.score(q, a) >= 1.0)
    outcome = f"fixed {fixed} of {len(problems)}"
    current = next((q for q in w.keeper.queue.all() if q.name == done.name), done)
    w.keeper.queue.update(replace(current, outcome=outcome))
    w.ledger.db.table("quests").update({"outcome": outcome}, lambda row: row.get("name") == done.name)
    w.keeper.board_changed()
    w.note(
        f"Sparring {done.name}: {outcome} of the problems {w.config.name.upper()} had missed (step {meta['step']})"
    )
    return outcome


def retire_stale(w: Worker) -> None:
    """Queued sparring quests made from an older DIO's mistakes are retired."""
    limit = w.config.sparring.max_age_steps
    for info in w.keeper.queue.all():
        meta = sidecar(w, info.name) if info.state == "queued" else None
        if meta is not None and w.progress.step - int(meta["step"]) > limit:
            why = (
                f"retired: made from {w.config.name.upper()}'s mistakes at step {meta['step']}, and {w.config.name.upper()} is at step "
                f"{w.progress.step} (sparring.max_age_steps {limit})"
            )
            w.keeper.queue.fail(info, why)
            w.note(f"{info.name} {why}", kind="quest")
            w.keeper.board_changed()
