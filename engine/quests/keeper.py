"""Quests inside the engine: which quest DIO is on, how far, and what happens at the end.

The worker calls ``poll()`` between steps (intake results, starting the next quest),
``finished`` after each step, and ``complete()`` when a quest is done. The quest's
place in the data is ``ActiveQuest.seen``; it is saved with every loot (``meta()``), so
a killed engine resumes a half-trained quest from its last loot, row for row.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from engine.evals.skill_evals import validation_loss
from engine.game.progress import GOLD_PER_QUEST
from engine.model.hero import LoadedHero
from engine.protocol import messages as p
from engine.protocol.config import HeroConfig
from engine.protocol.names import counted, printable
from engine.quests.checks import CheckReport, check_rows
from engine.quests.commands import carry_out, info_dict, queued_message
from engine.quests.format import QuestFile, QuestRejected, read_quest
from engine.quests.inbox import AddRequest, Inbox, IntakeResult
from engine.quests.queue import QuestError, QuestQueue
from engine.store.ledger import Ledger
from engine.train.chat import ChatRenderer, Rendered
from engine.train.packing import ListSource, pack_rows
from engine.train.stream import SkillStream
from skills.base import Skill

log = logging.getLogger("engine.quests.keeper")

LOSS_SAMPLE = 32  # quest rows scored for "loss before / after"


class Asker(Protocol):
    """The client that sent a command (it gets the reply)."""

    def send(self, event: Any) -> None: ...


class Announcer(Protocol):
    """Where the keeper's news goes (the engine's Reporter): the log, and every UI."""

    def note(self, text: str, level: str = "info") -> None: ...

    def broadcast(self, event: p.Event) -> None: ...


class ActiveQuest:
    """The quest being trained: its kept rows, a seeded order per epoch, a cursor."""

    def __init__(
        self, info: p.QuestInfo, rows: list[dict[str, Any]], renderer: ChatRenderer, share: float, seed: int
    ) -> None:
        self.info = info
        self.rows = rows
        self.renderer = renderer
        self.share = share
        self.seed = seed
        self.seen = info.seen
        self._order: tuple[int, list[int]] | None = None

    @property
    def label(self) -> str:
        return f"Quest {self.info.name}"

    @property
    def total(self) -> int:
        return len(self.rows) * self.info.epochs

    @property
    def finished(self) -> bool:
        return self.seen >= self.total

    def order(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            indices = list(range(len(self.rows)))
            random.Random(f"quest/{self.seed}/{self.info.name}/{epoch}").shuffle(indices)
            self._order = (epoch, indices)
        return self._order[1]

    def example(self, k: int) -> Rendered:
        epoch, i = divmod(k, len(self.rows))
        return self.renderer.render_row(self.rows[self.order(epoch)[i]])

    def live(self) -> p.QuestInfo:
        return replace(self.info, seen=min(self.seen, self.total))


class QuestKeeper:
    def __init__(
        self,
        quests: QuestQueue,
        config: HeroConfig,
        renderer: ChatRenderer,
        stream: SkillStream,
        skills: Iterable[Skill],
        hero: LoadedHero,
        ledger: Ledger,
        news: Announcer,
    ) -> None:
        self.queue = quests
        self.config = config
        self.renderer = renderer
        self.stream = stream  # the keeper plugs the active quest into it
        self.skills = list(skills)
        self.hero = hero
        self.ledger = ledger
        self.note = news.note
        self.broadcast = news.broadcast
        self.inbox = Inbox(quests, default_checks=config.game.quest_checks)
        self._active: ActiveQuest | None = None
        self._eval_prompts: set[str] | None = None
        self._eval_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="quest-checks")
        self._checking: tuple[p.QuestInfo, Future[Any]] | None = None
        self._check_renderer = ChatRenderer(copy.deepcopy(renderer.tokenizer), renderer.enable_thinking)
        self._queue_changed = True  # look for the next quest only after something moved

    @property
    def active(self) -> ActiveQuest | None:
        return self._active

    @active.setter
    def active(self, quest: ActiveQuest | None) -> None:
        self._active = quest
        self.stream.quest = quest

    # ------------------------------------------------------------------ start / stop

    def start(self, meta: dict[str, Any], loot: str | None = None) -> None:
        """Recover the queue, settle a quest whose completion loot was taken just before
        a crash, and pick up the quest the loot was on (at its row)."""
        moved, problems = self.queue.recover()
        for line in problems:
            self.note(line, "warning")
        finished = meta.get("quest_finished")
        if finished:
            for info in self.queue.all():
                if info.name == finished["name"] and info.state == "queued":
                    done = p.QuestInfo(
                        **{**finished, "notices": tuple(finished.get("notices", ())), "state": "queued"}
                    )
                    self._record(self.queue.finish(done), loot)
        for info in moved:
            self.note(f"Quest {info.name} was interrupted; it goes back to the {info.priority} queue")
        self.inbox.start()
        current = meta.get("quest")
        if current:
            for info in self.queue.all():
                if info.name == current["name"] and info.state == "queued":
                    # checked here, not on the checker thread: the loot's timeline had the
                    # quest active from its first step, so a resumed run must too
                    resumed = replace(info, seen=current["seen"], loss_before=current.get("loss_before"))
                    self.begin(resumed, self.check(resumed))
                    return

    def stop(self) -> None:
        self.inbox.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ between steps

    def poll(self) -> None:
        """Report what the inbox did; check the next quest off the loop, and start it
        once its checks are done (DIO trains on skills meanwhile). A quest problem is
        reported, never the end of training."""
        try:
            self._poll()
        except Exception as exc:
            log.exception("quest keeping failed")
            self.note(f"Quests: {type(exc).__name__}: {printable(str(exc))}", "warning")

    def _poll(self) -> None:
        changed = False
        while not self.inbox.results.empty():
            self._report(self.inbox.results.get())
            changed = True
        if changed:
            self._queue_changed = True
        if self.active is None and self._checking is None and self._queue_changed:
            # Reading the queue means reading every sidecar: only after something moved,
            # not on every training step.
            self._queue_changed = False
            nxt = self.queue.next_queued()
            if nxt is not None:
                self._checking = (nxt, self._pool.submit(self.check, nxt))
        if self._checking is not None and self._checking[1].done():
            info, future = self._checking
            self._checking = None
            self._queue_changed = True  # if it fails its checks, the next one is due
            still = [q for q in self.queue.all() if q.name == info.name and q.state == "queued"]
            if still:  # not cancelled or re-prioritised away while it was checked
                self.begin(replace(still[0], seen=info.seen, loss_before=info.loss_before), future.result())
            changed = True
        if changed:
            self.broadcast(p.QuestBoard(self.board()))

    def _report(self, result: IntakeResult) -> None:
        if result.info is None:
            self.note(f"Quest {result.name} refused: {result.reason}", "warning")
            self.broadcast(p.QuestRejected(result.name, result.reason))
            if result.reply_to is not None:
                result.reply_to.send(p.QuestReply(False, f"{result.name} refused: {result.reason}"))
            return
        info = result.info
        extra = f" ({'; '.join(result.notices)})" if result.notices else ""
        self.note(f"Quest {info.name} joins the {info.priority} queue: {counted(info.rows, 'row')}{extra}")
        if result.reply_to is not None:
            result.reply_to.send(p.QuestReply(True, queued_message(info, result.notices)))

    def check(self, info: p.QuestInfo) -> tuple[QuestFile, CheckReport] | QuestRejected:
        """Read the file again and run the content checks (on the checker thread, with
        its own tokenizer: a fast tokenizer must not be shared between threads)."""
        try:
            parsed = read_quest(self.queue.path_of(info))
            report = check_rows(
                parsed.rows,
                parsed.lines,
                lambda row: len(self._check_renderer.render_row(row)),
                self.config.train.seq_len,
                self.eval_prompts(),
                deep=info.checks == "deep",
            )
        except QuestRejected as exc:
            return exc
        except Exception as exc:  # a tokenizer error, anything: the file fails, DIO goes on
            return QuestRejected(f"its rows could not be checked ({type(exc).__name__}: {exc})")
        return parsed, report

    def begin(self, info: p.QuestInfo, checked: tuple[QuestFile, CheckReport] | QuestRejected) -> None:
        """Start a checked quest; one that failed its checks goes to failed/ with the reason."""
        if isinstance(checked, QuestRejected):
            failed = self.queue.fail(info, str(checked))
            self.note(f"Quest {failed.name} failed its checks: {failed.reason}", "warning")
            self.broadcast(p.QuestRejected(failed.name, failed.reason))
            return
        parsed, report = checked
        rows = [parsed.rows[i] for i in report.kept]
        notices = tuple(dict.fromkeys([*info.notices, *parsed.notices, *report.notices()]))
        info = replace(info, rows=len(rows), notices=notices, tokens=report.tokens * info.epochs)
        quest = ActiveQuest(info, rows, self.renderer, self.config.game.quest_share, self.config.train.seed)
        self.active = quest
        if info.loss_before is None:
            info = replace(info, loss_before=self.quest_loss())
        quest.info = self.queue.start(info)
        where = f" at row {info.seen} of {quest.total}" if info.seen else ""
        dropped = f"; {'; '.join(report.notices())}" if report.dropped else ""
        self.note(
            f"{self.config.name.upper()} takes on quest {info.name}{where}: {counted(len(rows), 'row')} × {counted(info.epochs, 'epoch')}{dropped}"
        )

    def quest_loss(self) -> float | None:
        quest = self.active
        if quest is None or not quest.rows:
            return None
        sample = [quest.renderer.render_row(quest.rows[i]) for i in quest.order(0)[:LOSS_SAMPLE]]
        pad = self.renderer.tokenizer.pad_token_id
        batch = pack_rows(ListSource(sample), None, self.config.train.seq_len, pad)
        return validation_loss(self.hero.model, batch, self.hero.device)

    def eval_prompts(self) -> set[str]:
        """Every eval problem of every level of the hero's skills (built once)."""
        with self._eval_lock:
            if self._eval_prompts is None:
                prompts: set[str] = set()
                for skill in self.skills:
                    for level in range(1, skill.max_level + 1):
                        prompts.update(problem.prompt for problem in skill.eval_set(level))
                self._eval_prompts = prompts
            return self._eval_prompts

    @property
    def finished(self) -> bool:
        return self.active is not None and self.active.finished

    def complete_info(self, step: int) -> p.QuestInfo:
        """The finished quest's record (loss after, time, step); the worker takes loot next."""
        assert self.active is not None
        live = self.active.live()
        return replace(live, loss_after=self.quest_loss(), finished_at=time.time(), finished_step=step)

    def settle(self, info: p.QuestInfo, loot: str | None) -> p.QuestInfo:
        """After the completion loot: the file moves to done/ and the board hears."""
        done = self.queue.finish(info)
        self._record(done, loot)
        self.active = None
        self._queue_changed = True
        self.broadcast(p.QuestCompleted(done, GOLD_PER_QUEST, loot))
        self.broadcast(p.QuestBoard(self.board()))
        return done

    def _record(self, done: p.QuestInfo, loot: str | None) -> None:
        self.ledger.record_quest({**info_dict(done), "gold": GOLD_PER_QUEST, "loot": loot})

    # ------------------------------------------------------------------ commands

    def command(self, client: Asker, command: p.QuestCommand) -> None:
        """AddQuest, CancelQuest, RetryQuest, SetQuestPriority; the asking client gets a
        QuestReply, everyone gets the new board."""
        self._queue_changed = True
        if isinstance(command, p.AddQuest):
            self.inbox.add(
                AddRequest(Path(command.path), command.priority, command.epochs, command.checks, client)
            )
            return  # the inbox thread validates; poll() answers
        try:
            message, info = carry_out(self.queue, command, self.config.game.quest_checks, self._cancel_active)
        except QuestRejected as exc:
            client.send(p.QuestReply(False, str(exc)))
            self.broadcast(p.QuestRejected(command.name, str(exc)))
            self.broadcast(p.QuestBoard(self.board()))
            return
        except (QuestError, OSError) as exc:
            client.send(p.QuestReply(False, str(exc)))
            return
        if isinstance(command, p.RetryQuest):
            self.note(f"Quest {info.name} retried: back in the {info.priority} queue")
        elif isinstance(command, p.SetQuestPriority) and self.active is not None:
            if self.active.info.name == info.name:
                self.active.info = replace(self.active.info, priority=info.priority)
        elif isinstance(command, p.CancelQuest) and "before it started" in info.reason:
            self.note(f"Quest {info.name} cancelled before it started")
        client.send(p.QuestReply(True, message))
        self.broadcast(p.QuestBoard(self.board()))

    def _cancel_active(self, name: str) -> p.QuestInfo | None:
        """Cancel the quest DIO is training, if ``name`` is that quest."""
        quest = self.active
        if quest is None or name not in (quest.info.name, quest.info.name.rsplit(".", 1)[0]):
            return None
        info = quest.live()
        failed = self.queue.fail(info, f"cancelled by the user at row {info.seen} of {quest.total}")
        self.active = None
        self.note(f"Quest {info.name} cancelled at row {info.seen} of {quest.total}")
        return failed

    # ------------------------------------------------------------------ what others see

    def board_changed(self) -> None:
        """Something outside the keeper queued or changed a quest (sparring): look for
        the next quest again, and show every UI the new board."""
        self._queue_changed = True
        self.broadcast(p.QuestBoard(self.board()))

    def board(self) -> tuple[p.QuestInfo, ...]:
        quests = self.queue.all()
        if self._checking is not None:
            name = self._checking[0].name
            quests = [
                replace(q, notices=("checking its rows…", *q.notices)) if q.name == name else q
                for q in quests
            ]
        if self.active is not None:
            live = self.active.live()
            quests = [live if q.name == live.name and q.state == "active" else q for q in quests]
        return tuple(quests)

    def live(self) -> p.QuestInfo | None:
        return self.active.live() if self.active is not None else None

    def meta(self) -> dict[str, Any]:
        """The quest's place in the data, saved with every loot."""
        quest = self.active
        if quest is None or quest.finished:
            return {"quest": None}
        return {"quest": {"name": quest.info.name, "seen": quest.seen, "loss_before": quest.info.loss_before}}

    def write_progress(self) -> None:
        if self.active is not None:
            self.queue.update(self.active.live())
