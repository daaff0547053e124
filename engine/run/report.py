"""What the engine tells the world, kept out of the loop: log lines and events.jsonl,
metrics.jsonl, hero.json, the Snapshot a UI gets on Hello, the while-away summary, the
headless progress line, and the throttle on step events (<= 10 per second; discrete
events are never dropped).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.protocol import messages as p
from engine.protocol.names import duration
from engine.protocol.savedir import SaveDir
from engine.quests.commands import info_dict
from engine.run import campaign_work
from engine.run.logbook import kind_of
from engine.run.server import EngineServer
from engine.store import commands as vault_commands
from engine.store.atomic import read_json, write_json, write_text
from engine.store.history import load_history, tail_rows
from engine.train.curriculum import GATE_WINDOW

if TYPE_CHECKING:
    from engine.run.worker import Worker

log = logging.getLogger("engine.run.worker")

STEP_EVENT_INTERVAL = 0.1  # seconds: StepCompleted is throttled to <= 10 per second
HISTORY = 600  # chart points kept for a Snapshot
SKILL_POINTS = 2000  # skill evals kept for a Snapshot (the stats screen's chart)
LOG_LINES = 40


class Reporter:
    """The engine's outputs: every UI, the log, events.jsonl and metrics.jsonl."""

    def __init__(
        self,
        save: SaveDir,
        server: EngineServer,
        echo: Callable[[str], None] | None,
        step_of: Callable[[], int] = lambda: 0,
    ) -> None:
        self.save = save
        self.step_of = step_of  # the step a note is written at (the log book shows it)
        self.server = server
        self.echo = echo  # headless progress lines (`realm train`)
        self.train_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.val_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.lr_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.grad_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.skill_history: deque[p.SkillPoint] = deque(maxlen=SKILL_POINTS)
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.tokens_per_s = 0.0
        self._window_tokens = 0  # tokens since the last StepCompleted, for tokens/s
        self._window_start = self._last_emit = time.monotonic()
        self._pending_steps = 0
        self._unwritable: set[Path] = set()

    def broadcast(self, event: p.Event) -> None:
        self.server.broadcast(event)

    def note(self, text: str, level: str = "info", kind: str = "") -> None:
        """A discrete happening: into the log file, events.jsonl, and every UI. ``kind``
        (one of LOG_KINDS, the log book's filter) is read from the text when not given."""
        getattr(log, "warning" if level == "warning" else "info")(text)
        self.log_lines.append(text)
        kind = kind if kind in p.LOG_KINDS else kind_of(text)
        line = p.LogLine(text=text, level=level, kind=kind, step=self.step_of(), time=time.time())
        self._append(
            self.save.events,
            {"time": line.time, "level": level, "kind": kind, "step": line.step, "text": text},
        )
        self.broadcast(line)

    def metric(self, row: dict[str, Any]) -> None:
        self._append(self.save.metrics, row)

    def _append(self, path: Path, row: dict[str, Any]) -> None:
        """History is worth a line in the log, never the run: a full disk or a removed
        folder loses the row, and training goes on."""
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as exc:
            if path not in self._unwritable:
                log.warning("cannot write %s: %s (history rows are lost until it can)", path.name, exc)
                self._unwritable.add(path)
        else:
            self._unwritable.discard(path)

    def metrics_offset(self) -> int:
        """Where metrics.jsonl ends now (saved with loot: a resume cuts the file back to it)."""
        try:
            return self.save.metrics.stat().st_size
        except OSError:
            return 0

    def forget_after(self, step: int, offset: int | None) -> None:
        """After a resume from loot at ``step``: the rows of the timeline that was lost
        (steps after the loot) go, so replayed steps appear once in metrics.jsonl. Loot
        records where the file ended; older loot without it are cut by step."""
        path = self.save.metrics
        try:
            size = path.stat().st_size
        except OSError:
            return
        if offset is not None and offset <= size:
            with open(path, "r+b") as f:
                f.truncate(offset)
            return
        kept = [r for r in tail_rows(path, size) if r.get("step", 0) <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def load_history(self, resumed_step: int) -> None:
        history = load_history(self.save, resumed_step, LOG_LINES)
        self.train_history.extend(history.train)
        self.val_history.extend(history.val)
        self.lr_history.extend(history.lr)
        self.grad_history.extend(history.grad_norm)
        self.skill_history.extend(history.skills)
        self.log_lines.extend(history.lines)

    def start_clock(self) -> None:
        self._window_start = self._last_emit = time.monotonic()
        self._window_tokens = 0
        self._pending_steps = 0

    def step_done(self, tokens: int, event: Callable[[int], p.StepCompleted], now: float) -> None:
        """Count one step; every STEP_EVENT_INTERVAL, one StepCompleted for all of them
        (``event`` builds it from the number of steps it covers, only when it is sent)."""
        self._window_tokens += tokens
        self._pending_steps += 1
        if now - self._last_emit < STEP_EVENT_INTERVAL:
            return
        elapsed = now - self._window_start
        if elapsed > 0:
            self.tokens_per_s = self._window_tokens / elapsed
        self._window_tokens = 0
        self._window_start = self._last_emit = now
        self.broadcast(event(self._pending_steps))
        self._pending_steps = 0


def skill_info(w: Worker, skill_id: str) -> p.SkillInfo:
    skill = w.curriculum.skills[skill_id]
    track = w.curriculum.tracks[skill_id]
    spec = skill.spec
    sample = w.samples.get(skill_id)
    return p.SkillInfo(
        id=skill.id,
        name=skill.name,
        icon=spec.icon,
        colour=spec.colour,
        level=track.level,
        max_level=skill.max_level,
        threshold=spec.threshold,
        gate_window=GATE_WINDOW,
        evals=tuple(track.evals),
        mastered=tuple(sorted(track.mastered)),
        sample_prompt=sample.sample.prompt if sample and sample.sample else "",
        sample_answer=sample.sample_answer if sample else "",
        sample_correct=sample.sample_correct if sample else False,
    )


def away_summary(w: Worker) -> p.AwaySummary | None:
    """What happened since the last watching UI left (None: nobody has left yet)."""
    seen = w.last_watched
    if not seen:
        return None
    since = seen["time"]
    loot = [r["step"] for r in w.ledger.live_loot() if r["time"] > since]
    skills_then = seen.get("skills") or {}
    reached = tuple(
        f"{sid.upper()} L{track.level}"
        for sid, track in w.curriculum.tracks.items()
        if sid in skills_then and track.level > skills_then[sid]
    )
    evals = {r.get("step") for r in w.ledger.evals.all() if r.get("recorded_at", 0) > since}
    quests = [r for r in w.ledger.quests.all() if r.get("recorded_at", 0) > since]
    stepped_in = [
        r for r in w.ledger.watchdog.all() if r.get("recorded_at", 0) > since and r.get("kind") != "skip"
    ]
    return p.AwaySummary(
        seconds=time.time() - since,
        steps_gained=w.progress.step - seen["step"],
        levels_gained=w.progress.level - seen["level"],
        loot_steps=tuple(loot),
        restarted=w.started_at > since,
        skill_levels=reached,
        quests_done=len(quests),
        gold_gained=max(0, w.progress.gold - int(seen.get("gold", w.progress.gold))),
        evals=len(evals),
        crashes=max(0, w.crashes - int(seen.get("crashes", w.crashes))),
        interventions=len(stepped_in),
        phases=tuple(
            f"{r.name} ({r.reason})"
            for r in (w.campaign.state.history if w.campaign else [])
            if r.ended_at > since
        ),
        grade=w.progress.grade,
    )


def snapshot(w: Worker, away: p.AwaySummary | None = None) -> p.Snapshot:
    out = w.report
    return p.Snapshot(
        protocol_version=p.PROTOCOL_VERSION,
        hero=w.config.name,
        model=w.config.model_label,
        device=w.hero.device.type,
        state=w.state,
        pid=os.getpid(),
        stats=w.progress.stats(w.shop.spent),
        tokens_per_s=out.tokens_per_s,
        source=w.stream.label,
        train_losses=tuple(out.train_history),
        val_losses=tuple(out.val_history),
        loot=vault_commands.listed(w.vault, w.config.vault).loot,
        log=tuple(out.log_lines),
        masked_fraction=w.masked_fraction,
        params=w.hero.params,
        skills=tuple(skill_info(w, sid) for sid in w.curriculum.tracks),
        away=away,
        quests=w.keeper.board(),
        gpu=w.gpu_stats,
        memory_plan=w.memory_plan,
        warnings=tuple(w.warnings),
        tasks=w.tasks.all(),
        eval_every=w.config.game.eval_every,
        achievements=w.achievements.infos(),
        campaign=campaign_work.info(w),
        config_json=json.dumps(read_json(w.save.config, None) or json.loads(w.config.to_json())),
        skill_history=tuple(out.skill_history),
        lr_history=tuple(out.lr_history),
        grad_history=tuple(out.grad_history),
        shop=w.shop.info(w.progress.gold),
    )


SAVED_LOOT = 20  # loot written into hero.json for the first frame


def last_loot_step(w: Worker) -> int | None:
    """The loot training resumes from (after a rewind, not the newer set-aside ones)."""
    name = w.vault.resume_name()
    return next((r["step"] for r in w.ledger.live_loot() if r["name"] == name), None)


def status_dict(w: Worker) -> dict[str, Any]:
    """hero.json: what `realm status` reads, with or without a running engine."""
    live = w.ledger.live_loot()
    running = w.tasks.current()
    return {
        "hero": w.config.name,
        "model": w.config.model_label,
        "state": w.state,
        "pid": os.getpid(),
        "step": w.progress.step,
        "level": w.progress.level,
        "loss": w.progress.smoothed_loss,
        "val_loss": w.progress.val_loss,
        "acc": w.progress.accuracy,
        "gold": w.shop.purse(w.progress.gold),  # to spend; "gold_earned" is the life's total
        "gold_earned": w.progress.gold,
        "looks": w.shop.looks(),  # title, portrait, theme worn: the first frame wears them
        "tokens_per_s": round(w.report.tokens_per_s, 1),
        "device": w.hero.device.type,
        "ranks": w.team.world if w.team is not None else 1,  # --gpus N
        "sharded": w.shards > 1,  # --fsdp
        "last_loot_step": last_loot_step(w),
        "loot": len(live),
        # The newest loot as LootInfo dicts: a returning hero's first frame (tui/saved.py)
        # shows them before the engine is up, without the UI reading the ledger.
        "recent_loot": [asdict(vault_commands.loot_info(row)) for row in live[-SAVED_LOOT:]],
        "task": asdict(running) if running else None,
        "tasks": [asdict(t) for t in w.tasks.all()],
        "updated_at": time.time(),
        "last_watched": w.last_watched,
        "crashes": w.crashes,  # engines that died without stopping, over the hero's life
        "masked_fraction": round(w.masked_fraction, 4),
        "skills": {
            sid: {"level": t.level, "evals": t.evals, "mastered": sorted(t.mastered)}
            for sid, t in w.curriculum.tracks.items()
        },
        "quest": info_dict(quest) if (quest := w.keeper.live()) else None,
        "gpu": asdict(w.gpu_stats),
        "memory_plan": w.memory_plan,
        "warnings": w.warnings[-10:],
        "grade": grade.to_dict() if (grade := w.grade_book.grade(len(w.watchdog.rollbacks))) else None,
        "campaign": campaign_work.status(w),
    }


def write_status(w: Worker) -> None:
    try:
        w.keeper.write_progress()
        write_json(w.save.status, status_dict(w))
    except OSError as exc:  # a full disk: `realm status` goes stale, training goes on
        log.warning("cannot write %s: %s", w.save.status.name, exc)


def progress_line(w: Worker) -> str:
    stats = w.progress
    loss = f"{stats.smoothed_loss:.4f}" if stats.smoothed_loss is not None else "-"
    loot = last_loot_step(w)
    running = w.tasks.current()
    state = f"{running.kind} {running.done}/{running.total}" if running else w.state
    acc = f"{stats.accuracy:.0%}" if stats.accuracy is not None else "-"
    return (
        f"step {stats.step}{steps_left(stats.step, w.config.game.max_steps, stats.step_seconds)} | "
        f"level {stats.level} | loss {loss} | acc {acc} | "
        f"{w.report.tokens_per_s:,.0f} tok/s | {state} | last loot {loot if loot is not None else '-'}"
    )


def steps_left(step: int, stop_at: int, step_seconds: float | None) -> str:
    """'/1000 (~3m left)' for a run with --max-steps, at the recent pace; '' for an idle one."""
    if not stop_at:
        return ""
    if not step_seconds or step >= stop_at:
        return f"/{stop_at}"
    return f"/{stop_at} (~{duration((stop_at - step) * step_seconds)} left)"
