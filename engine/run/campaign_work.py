"""The campaign's hands in the worker (the file format and progress are in
``engine/train/campaign.py``).

A worker that starts reads ``campaign.json`` and its loot's campaign state, and trains
the current phase: its skill weights, its learning-rate schedule (warmup and decay
counted from the phase's first step), and a rehearsal share of the earlier phases.
Between steps ``phase_over`` checks the phase's end (steps, its quests done, or its
gate); the end is a task: the skills are evaluated, loot is taken carrying the next
phase's state, the phase's suites run on it, and the worker restarts from that loot
in the next phase (as a rewind does: one start path, so a killed engine resumes in
the right phase at the right row).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.evals.runner import latest_runs
from engine.protocol import messages as p
from engine.protocol.config import HeroConfig, TrainConfig
from engine.quests.checks import check_rows
from engine.quests.format import QuestRejected, read_quest
from engine.run.tasks import TaskBody
from engine.store.vault import Resumable, loot_name
from engine.train.campaign import Campaign, CampaignError, CampaignState, Phase, PhaseRecord
from engine.train.campaign_files import CampaignUnreadable, begins_message, install, leave, locate, stored
from engine.train.stream import AnySource, RowsSource, Source

if TYPE_CHECKING:
    from engine.run.server import ClientSession
    from engine.run.worker import Worker

RESTART = "campaign"  # the worker's stop reason that starts the next phase


@dataclass
class CampaignRun:
    """The campaign a worker follows, and what this process knows beyond its state."""

    campaign: Campaign
    state: CampaignState
    digests: list[set[str]] = field(default_factory=list)  # each phase's quest files
    pending: int = 0  # quests handed to the inbox and not answered yet
    quests_open: bool = False  # some of this phase's quests are queued or active
    ending: bool = False  # the phase's end is on the task board
    suite_scores: dict[str, float] = field(default_factory=dict)  # this phase's gate runs

    @property
    def index(self) -> int:
        return self.state.phase

    @property
    def phase(self) -> Phase:
        return self.campaign.phases[self.state.phase]


# ---------------------------------------------------------------------- files


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def load(w: Worker, resume: Resumable | None) -> CampaignRun | None:
    """The campaign this worker trains, in the phase its loot was in (a loot of no or
    another campaign: the first phase, from the loot's step)."""
    try:
        campaign = stored(w.save)
    except CampaignUnreadable as exc:
        w.warn(f"{exc}; training without the campaign", "campaign")
        return None
    if campaign is None:
        return None
    saved = (resume.meta.get("campaign") if resume else None) or {}
    if saved.get("campaign") == campaign.digest:
        state = CampaignState.from_dict(saved)
    else:
        state = CampaignState(campaign.digest, phase_start=int(resume.meta["step"]) if resume else 0)
    return following(campaign, state)


def following(campaign: Campaign, state: CampaignState) -> CampaignRun:
    return CampaignRun(campaign, state, [{_digest(q) for q in phase.quests} for phase in campaign.phases])


# ---------------------------------------------------------------------- what a phase trains


def skill_ids(config: HeroConfig, run: CampaignRun | None) -> list[str]:
    """The hero's skills and the campaign's: all are tracked and evaluated."""
    return list(dict.fromkeys([*config.game.skills, *(run.campaign.skill_ids() if run else [])]))


def weights(config: HeroConfig, run: CampaignRun | None) -> dict[str, float]:
    """The phase's mix; a phase of quests alone fills the rest with the hero's skills."""
    if run is None or not run.phase.skills:
        return dict(config.game.skills)
    return dict(run.phase.skills)


def train_config(train: TrainConfig, run: CampaignRun | None) -> TrainConfig:
    """The hero's optimizer settings with the phase's schedule."""
    if run is None:
        return train
    phase = run.phase
    return replace(
        train,
        lr=phase.lr if phase.lr is not None else train.lr,
        schedule=phase.schedule,
        warmup_steps=phase.warmup_steps if phase.warmup_steps is not None else train.warmup_steps,
        min_lr_ratio=phase.min_lr_ratio if phase.min_lr_ratio is not None else train.min_lr_ratio,
        decay_steps=phase.decay_steps or phase.steps or phase.max_steps or train.decay_steps,
    )


def sources(w: Worker) -> list[AnySource]:
    """The curriculum's sources, plus the rehearsal buffer: a share of the examples from
    the earlier phases, split evenly between them (each phase's skills by its weights at
    DIO's current level, and its quests' rows)."""
    main: list[AnySource] = list(w.curriculum.sources())
    run = w.campaign
    if run is None or run.index == 0:
        return main
    share = run.campaign.rehearsal_of(run.index)
    earlier = [_phase_sources(w, run.campaign.phases[i]) for i in range(run.index)]
    earlier = [group for group in earlier if group]
    if share == 0 or not earlier:
        return main
    total = sum(s.weight for s in main)
    out: list[AnySource] = [replace(s, weight=s.weight * (1 - share) / total) for s in main]
    for group in earlier:
        group_total = sum(s.weight for s in group)
        out += [replace(s, weight=s.weight * share / len(earlier) / group_total) for s in group]
    return out


def _phase_sources(w: Worker, phase: Phase) -> list[AnySource]:
    out: list[AnySource] = []
    for skill_id, weight in phase.skills.items():
        track = w.curriculum.tracks.get(skill_id)
        if track is not None:
            out.append(Source(w.curriculum.skills[skill_id], track.level, weight))
    for quest in phase.quests:
        rows = _quest_rows(w, quest)
        if rows:
            weight = sum(phase.skills.values()) / len(phase.skills) if phase.skills else 1.0
            out.append(RowsSource(Path(quest).name, rows, weight))
    return out


def _quest_rows(w: Worker, path: str) -> tuple[Any, ...]:
    """A finished quest's rows as the quest trained them: only those that fit a row and
    hold no eval problem (the quest checks)."""
    try:
        quest = read_quest(Path(path))
    except QuestRejected as exc:
        w.warn(f"campaign: quest {Path(path).name} cannot be rehearsed: {exc}", "campaign")
        return ()
    render = w.renderer.render_row
    report = check_rows(
        quest.rows, quest.lines, lambda row: len(render(row)), w.config.train.seq_len, w.keeper.eval_prompts()
    )
    return tuple(render(quest.rows[i]) for i in report.kept)


# ---------------------------------------------------------------------- the worker's calls


def begin(w: Worker) -> None:
    """After the worker's start: the phase's quests go on the board (once per phase)."""
    run = w.campaign
    if run is None:
        return
    w.server.observers.append(lambda event: _watch(run, event))
    run.quests_open = _open(run, w.keeper.board())
    if run.state.finished or run.state.quests_queued or not run.phase.quests:
        return
    run.state.quests_queued = True
    collector = _Replies(run)
    for quest in run.phase.quests:
        run.pending += 1
        # A file already queued, active or done is refused as a duplicate: harmless when a
        # resumed phase queues again.
        w.keeper.command(collector, p.AddQuest(quest, priority="high", epochs=run.phase.epochs or None))


class _Replies:
    """Counts the inbox's answers to the phase's quests."""

    def __init__(self, run: CampaignRun) -> None:
        self.run = run

    def send(self, event: Any) -> None:
        if isinstance(event, p.QuestReply):
            self.run.pending = max(0, self.run.pending - 1)


def _open(run: CampaignRun, board: tuple[p.QuestInfo, ...]) -> bool:
    mine = run.digests[run.index]
    return any(q.digest in mine and q.state in ("queued", "active") for q in board)


def _watch(run: CampaignRun, event: Any) -> None:
    if isinstance(event, p.QuestBoard):
        run.quests_open = _open(run, event.quests)


def after_eval_scheduled(w: Worker) -> None:
    """A gate that names suites: they run on the live weights after each skill eval."""
    run = w.campaign
    if run is None or run.state.finished:
        return
    for condition in run.phase.until:
        if condition.suite:
            w.tasks.add("gate", f"{condition.suite} for the gate", _gate_suite(w, run, condition.suite))


def _gate_suite(w: Worker, run: CampaignRun, suite: str) -> TaskBody:
    from engine.run import suite_work

    message = yield from suite_work.run(w, suite, None, None, live=True)
    newest = latest_runs(w.ledger, suite).get(f"live@{w.progress.step}")
    if newest is not None:
        run.suite_scores[suite] = float(newest["score"])
    return message


def end_reason(w: Worker, run: CampaignRun) -> str | None:
    """Why the current phase is over now, or None."""
    phase, done = run.phase, w.progress.step - run.state.phase_start
    if phase.steps:
        return f"{phase.steps:,} steps" if done >= phase.steps else None
    if phase.epochs:
        over = run.state.quests_queued and run.pending == 0 and not run.quests_open
        return "its quests are done" if over else None
    unmet = [c.label for c in phase.until if not _met(w, run, c.skill, c.level, c.suite, c.score)]
    if not unmet:
        return "gate passed: " + " and ".join(c.label for c in phase.until)
    if phase.max_steps and done >= phase.max_steps:
        return f"{phase.max_steps:,} steps without passing the gate ({', '.join(unmet)} not reached)"
    return None


def _met(w: Worker, run: CampaignRun, skill: str, level: int, suite: str, score: float) -> bool:
    if skill:
        track = w.curriculum.tracks.get(skill)
        return track is not None and track.level >= level
    got = run.suite_scores.get(suite)
    return got is not None and got >= score


def phase_over(w: Worker) -> bool:
    """Called before each training step: True while the phase's end is being carried out
    (no step trains meanwhile)."""
    run = w.campaign
    if run is None or run.state.finished:
        return False
    if run.ending:
        return True
    reason = end_reason(w, run)
    if reason is None:
        return False
    run.ending = True
    w.tasks.add("phase", f"end of phase {run.phase.name}", _end_phase(w, run, reason), first=True)
    return True


def _end_phase(w: Worker, run: CampaignRun, reason: str) -> TaskBody:
    from engine.run import suite_work

    step, phase, index = w.progress.step, run.phase, run.index
    if w.eval_step != step:  # its skills evaluated at its last step (once)
        yield from w.eval_task(loot_after=False)
    scores = {sid: float(r["accuracy"]) for sid, r in w.eval_results.items()}
    before = CampaignState.from_dict(run.state.to_dict())
    record = PhaseRecord(
        index, phase.name, run.state.phase_start, step, loot_name(step), reason, time.time(), scores
    )
    run.state.history.append(record)
    last = index == len(run.campaign.phases) - 1
    if last:
        run.state.finished = True
    else:
        run.state.phase, run.state.phase_start, run.state.quests_queued = index + 1, step, False
    loot = w.take_loot("phase")  # carries the new state: a restart begins the next phase
    if loot is None:  # a full disk: training paused; the phase ends once loot can be saved
        run.state, run.ending = before, False
        return "the phase's loot could not be saved"
    for suite in phase.evals:
        yield from suite_work.run(w, suite, loot.name, None, live=True)
    marks = " · ".join(f"{sid.upper()} {acc:.0%}" for sid, acc in scores.items())
    news = f"Phase {phase.name} complete ({reason}) at step {step:,}: {marks}"
    nxt = "" if last else f"; phase {index + 2} ({run.campaign.phases[index + 1].name}) begins"
    w.note(f"CAMPAIGN: {news}{nxt}", kind="campaign")
    w.server.broadcast(p.CampaignUpdated(info(w), news + nxt))
    if w.stop_reason is not None:  # a stop came meanwhile: the loot starts the next phase later
        return news
    if not last:
        w.stop_reason = RESTART
    else:
        _finish(w, run)
    return news


def _finish(w: Worker, run: CampaignRun) -> None:
    name, when = run.campaign.name, run.campaign.when_done
    if when == "stop":
        w.note(f"Campaign {name} is complete: DIO stops (when_done: stop)", kind="campaign")
        w.stop_reason = "campaign done"
    elif when == "pause":
        w.note(f"Campaign {name} is complete: DIO pauses (when_done: pause); space goes on", kind="campaign")
        w.set_paused(True)
        w.server.broadcast(p.Paused(w.progress.step))
    else:
        w.note(f"Campaign {name} is complete: DIO goes on with the last phase's mix", kind="campaign")


# ---------------------------------------------------------------------- commands


def command(w: Worker, client: ClientSession, cmd: p.StartCampaign | p.EndCampaign) -> None:
    if isinstance(cmd, p.EndCampaign):
        _end_command(w, client)
        return
    run = w.campaign
    if run is not None and not run.state.finished:
        client.send(
            p.CampaignReply(
                False,
                f"DIO follows campaign {run.campaign.name} (phase {run.index + 1} of "
                f"{len(run.campaign.phases)}): `realm campaign stop` first",
            )
        )
        return
    try:
        campaign = install(w.save, locate(cmd.path), replace_finished=run is not None)
    except CampaignError as exc:
        client.send(p.CampaignReply(False, exc.about(Path(cmd.path).name)))
        return
    except OSError as exc:
        client.send(p.CampaignReply(False, f"cannot read {cmd.path}: {exc.strerror or exc}"))
        return
    step = w.progress.step
    w.campaign = following(campaign, CampaignState(campaign.digest, phase_start=step))
    message = begins_message(campaign, f"at step {step:,}")
    w.note(f"CAMPAIGN: {message}", kind="campaign")
    if w.take_loot("campaign") is None:  # a full disk: the next start begins it
        client.send(p.CampaignReply(False, f"{message}, once loot can be saved (the disk is full)"))
        return
    client.send(p.CampaignReply(True, message))
    w.server.broadcast(p.CampaignUpdated(info(w), message))
    w.stop_reason = RESTART


def _end_command(w: Worker, client: ClientSession) -> None:
    run = w.campaign
    if run is None:
        client.send(p.CampaignReply(False, "DIO follows no campaign"))
        return
    leave(w.save)
    w.campaign = None
    message = f"Left campaign {run.campaign.name} at step {w.progress.step:,}: back to the hero's own skills"
    w.note(message, kind="campaign")
    w.take_loot("campaign")  # the hero's own mix and schedule from the restart on
    client.send(p.CampaignReply(True, message))
    w.server.broadcast(p.CampaignUpdated(None, message))
    w.stop_reason = RESTART


# ---------------------------------------------------------------------- what the game shows


def info(w: Worker) -> p.CampaignInfo | None:
    run = w.campaign
    if run is None:
        return None
    phases = []
    ended = {r.phase: r for r in run.state.history}
    for i, phase in enumerate(run.campaign.phases):
        record = ended.get(i)
        state = "done" if record else ("current" if i == run.index else "next")
        phases.append(_phase_info(w, run, i, phase, state, record))
    return p.CampaignInfo(
        name=run.campaign.name,
        phases=tuple(phases),
        current=run.index,
        finished=run.state.finished,
        description=run.campaign.description,
        when_done=run.campaign.when_done,
    )


def _phase_info(
    w: Worker, run: CampaignRun, i: int, phase: Phase, state: str, record: PhaseRecord | None
) -> p.PhaseInfo:
    lr = phase.lr if phase.lr is not None else w.config.train.lr
    warmup = phase.warmup_steps if phase.warmup_steps is not None else w.config.train.warmup_steps
    base = p.PhaseInfo(
        name=phase.name,
        state=state,
        skills=" · ".join(f"{sid.upper()} ×{weight:g}" for sid, weight in phase.skills.items()) or "quests",
        length=phase.length,
        schedule=f"lr {lr:.0e} {phase.schedule}, warmup {warmup}",
        rehearsal=run.campaign.rehearsal_of(i),
        quests=len(phase.quests),
    )
    if record is not None:
        scores = " · ".join(f"{sid.upper()} {acc:.0%}" for sid, acc in record.scores.items())
        metrics = _loot_metrics(w, record.loot)
        result = f"{record.reason} · {scores}" + (f" · {metrics}" if metrics else "")
        return replace(
            base, start_step=record.start, end_step=record.end, progress=1.0, loot=record.loot, result=result
        )
    if state != "current":
        return base
    done = w.progress.step - run.state.phase_start
    length = phase.steps or phase.max_steps
    progress = min(1.0, done / length) if length else None
    return replace(base, start_step=run.state.phase_start, progress=progress, gate=_gate_text(w, run, phase))


def _gate_text(w: Worker, run: CampaignRun, phase: Phase) -> str:
    if phase.steps:
        return f"{w.progress.step - run.state.phase_start:,} of {phase.steps:,} steps"
    if phase.epochs:
        return "its quests are on the board" if run.quests_open or run.pending else "quests done"
    parts = []
    for c in phase.until:
        if c.skill:
            track = w.curriculum.tracks.get(c.skill)
            parts.append(f"{c.skill.upper()} L{track.level if track else '?'} (needs L{c.level})")
        else:
            got = run.suite_scores.get(c.suite)
            now = f"{got:.0%}" if got is not None else "not run yet"
            parts.append(f"{c.suite} {now} (needs {c.score:.0%})")
    return " · ".join(parts)


def _loot_metrics(w: Worker, name: str) -> str:
    row = next((r for r in w.ledger.live_loot() if r["name"] == name), None)
    metrics = (row or {}).get("metrics") or {}
    return " · ".join(f"{suite} {score:.0%}" for suite, score in metrics.items())


def state_meta(w: Worker) -> dict[str, Any]:
    """The campaign's progress in a loot's metadata."""
    return {"campaign": w.campaign.state.to_dict()} if w.campaign is not None else {}


def status(w: Worker) -> dict[str, Any] | None:
    """hero.json's "campaign" (what `realm campaign status` prints with DIO resting)."""
    got = info(w)
    return asdict(got) if got is not None else None
