"""The task board: work the engine does besides training (evals, loot evals, compares,
Oracle answers), on one queue, in small slices between training steps.

A task is a generator: each ``next()`` does one slice (one eval batch, one reply) and
yields its progress. The loop runs one slice, then reads commands again, so a Pause or
any other command is honoured within one slice, never after a whole eval. While a task
is on the board, training waits (an eval's result may change what DIO trains on next)
and the game says what runs ("EVALUATING 12/70").

While paused, only tasks a user asked for run (an Oracle question, a loot eval, a
compare); the scheduled ones wait for Resume, so a pause quiets the machine.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

from engine.protocol import messages as p

log = logging.getLogger("engine.run.tasks")

# A slice reports (done, total) of its task's units (problems, batches, tokens…).
Progress = tuple[int, int]
TaskBody = Generator[Progress, None, str]  # returns its one-line result
FINISHED_KEPT = 20  # finished tasks the board remembers (for the screen and `realm status`)


@dataclass
class Task:
    id: int
    kind: str  # "eval" | "loot-eval" | "compare" | "ask"
    label: str
    body: TaskBody
    asked: bool  # asked for by a user (runs while paused)
    info: p.TaskInfo = field(init=False)

    def __post_init__(self) -> None:
        self.info = p.TaskInfo(self.id, self.kind, self.label, "queued", 0, 0, "", time.time())


# A rule for a scheduled task: (task id, kind, paused, begun) -> may it run now, or None
# for the default (it runs unless DIO is paused).
Rule = Callable[[int, str, bool, bool], bool | None]


class TaskBoard:
    def __init__(self, broadcast: Callable[[p.Event], None], rule: Rule | None = None) -> None:
        self.broadcast = broadcast
        self.rule = rule
        self.queue: deque[Task] = deque()
        self.finished: deque[p.TaskInfo] = deque(maxlen=FINISHED_KEPT)
        self.ids = itertools.count(1)

    def add(
        self, kind: str, label: str, body: TaskBody, asked: bool = False, first: bool = False
    ) -> p.TaskInfo:
        task = Task(next(self.ids), kind, label, body, asked)
        if first:
            self.queue.appendleft(task)
        else:
            self.queue.append(task)
        self.broadcast(p.TaskUpdated(task.info))
        return task.info

    def runnable(self, paused: bool) -> Task | None:
        return next((t for t in self.queue if self.may_run(t, paused)), None)

    def may_run(self, task: Task, paused: bool) -> bool:
        """Asked-for tasks always run; scheduled ones wait for Resume, unless the
        board's rule (the GPU-idle option) says otherwise."""
        if task.asked:
            return True
        if self.rule is not None:
            verdict = self.rule(task.id, task.kind, paused, task.info.state == "running")
            if verdict is not None:
                return verdict
        return not paused

    def has_work(self, paused: bool) -> bool:
        return self.runnable(paused) is not None

    def current(self) -> p.TaskInfo | None:
        """The task in progress, if one has begun."""
        return next((t.info for t in self.queue if t.info.state == "running"), None)

    def run_slice(self, paused: bool) -> p.TaskInfo | None:
        """One slice of the first task that may run now; returns its info after it."""
        task = self.runnable(paused)
        if task is None:
            return None
        if task.info.state == "queued":
            task.info = replace(task.info, state="running", started_at=time.time())
        try:
            done, total = next(task.body)
        except StopIteration as end:
            self._finish(task, "done", str(end.value or ""))
        except Exception as exc:  # a task's failure is its own, never the engine's
            log.exception("task %s failed", task.label)
            self._finish(task, "failed", f"{type(exc).__name__}: {exc}")
        else:
            task.info = replace(task.info, done=done, total=total)
            self.broadcast(p.TaskUpdated(task.info))
        return task.info

    def _finish(self, task: Task, state: str, result: str) -> None:
        self.queue.remove(task)
        task.info = replace(task.info, state=state, result=result, finished_at=time.time())
        if state == "done" and task.info.total:
            task.info = replace(task.info, done=task.info.total)
        self.finished.append(task.info)
        self.broadcast(p.TaskUpdated(task.info))

    def drain(self) -> None:
        """Run everything now (tests, and a stop that must not leave half an eval)."""
        while self.queue:
            self.run_slice(paused=False)

    def all(self) -> tuple[p.TaskInfo, ...]:
        return (*self.finished, *(t.info for t in self.queue))


def run_to_end(body: TaskBody) -> str:
    """A task body run in one go (what the CLI-side and tests call)."""
    while True:
        try:
            next(body)
        except StopIteration as end:
            return str(end.value or "")
