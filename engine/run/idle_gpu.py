"""The GPU-idle rule of the task board (``tasks.gpu_idle_only``), as the original
system's Task Master ran its upkeep only when the GPU was idle.

In our loop a task and a training step never run at once: every slice of a task is
time the trainer waits. So a background task "would not slow training" only while DIO
is paused, and it would not slow anyone else only while the GPU is idle (NVML
utilisation under ``gpu_idle_percent``: no other job on it). Suite runs and sparring
re-tests wait for that moment and, once begun, finish (a slice at a time) even if DIO
resumes, so one run never mixes two sets of weights; a task that waited ``max_wait_steps`` runs anyway, so
nothing waits forever on a box that is never paused. Skill evals are never held: the
curriculum waits on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.model.gpu import POLL_SECONDS, GpuProbe
from engine.protocol.config import TasksConfig

HELD_KINDS = frozenset({"suite", "retest"})  # background work that does not steer training


@dataclass
class IdleGpuGate:
    cfg: TasksConfig
    probe: GpuProbe
    step: Callable[[], int]  # the trainer's step now
    first_seen: dict[int, int] = field(default_factory=dict)  # task id -> step it was first held
    last_read: float = -1e9
    idle: bool = False

    @property
    def active(self) -> bool:
        return self.cfg.gpu_idle_only and self.probe.available

    def __call__(self, task_id: int, kind: str, paused: bool, begun: bool) -> bool | None:
        """May a scheduled task of ``kind`` run now? None: the board's default rule
        (it runs unless paused) applies."""
        if not self.active or kind not in HELD_KINDS:
            return None
        if begun:
            return (
                True  # finish what began (its slices read one set of weights); commands land between slices
            )
        first = self.first_seen.setdefault(task_id, self.step())
        if self.step() - first >= self.cfg.max_wait_steps:
            return None  # overdue: it runs like any scheduled task
        return paused and self.gpu_idle()

    def gpu_idle(self) -> bool:
        now = time.monotonic()
        if now - self.last_read >= POLL_SECONDS:  # NVML at most twice a second
            utilization = self.probe.read().utilization
            self.idle = utilization is not None and utilization < self.cfg.gpu_idle_percent
            self.last_read = now
        return self.idle
