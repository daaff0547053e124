"""The task board: evals run a batch at a time between commands, so a Pause lands
between two slices of an eval, never after the whole of it."""

from __future__ import annotations

from pathlib import Path

from engine.protocol import messages as p
from engine.protocol.config import TasksConfig
from engine.run.idle_gpu import IdleGpuGate
from engine.run.tasks import TaskBoard, run_to_end
from tests.conftest import make_hero, run_engine


def counting(n: int, log: list[str]):  # type: ignore[no-untyped-def]
    for i in range(n):
        log.append(f"slice {i}")
        yield i + 1, n
    return f"{n} slices"


def test_slices_run_one_at_a_time_and_asked_tasks_run_while_paused() -> None:
    events: list[p.Event] = []
    board = TaskBoard(events.append)
    done: list[str] = []
    board.add("eval", "scheduled", counting(3, done))
    board.add("ask", "asked", counting(1, done), asked=True)
    assert board.run_slice(paused=True).label == "asked"  # type: ignore[union-attr]
    assert board.run_slice(paused=True).state == "done"  # type: ignore[union-attr]
    assert not board.has_work(paused=True) and board.has_work(paused=False)  # the eval waits for Resume
    while board.has_work(paused=False):
        board.run_slice(paused=False)
    assert done == ["slice 0", "slice 0", "slice 1", "slice 2"]
    final = [e.task for e in events if isinstance(e, p.TaskUpdated) and e.task.state == "done"]
    assert [(t.label, t.result, t.done, t.total) for t in final] == [
        ("asked", "1 slices", 1, 1),
        ("scheduled", "3 slices", 3, 3),
    ]
    assert run_to_end(counting(2, [])) == "2 slices"


def test_a_failing_task_fails_alone() -> None:
    def broken():  # type: ignore[no-untyped-def]
        yield 0, 1
        raise ValueError("no such problem")

    board = TaskBoard(lambda _e: None)
    board.add("eval", "broken", broken())
    board.run_slice(paused=False)
    info = board.run_slice(paused=False)
    assert info is not None and info.state == "failed" and "no such problem" in info.result
    assert not board.queue


class FakeProbe:
    """NVML as a test sets it: a GPU whose utilisation the test chooses."""

    available = True

    def __init__(self) -> None:
        self.utilization = 95.0

    def read(self) -> p.GpuStats:
        return p.GpuStats(available=True, utilization=self.utilization)


def test_gpu_idle_only_holds_background_tasks_until_paused_on_an_idle_gpu() -> None:
    probe, step = FakeProbe(), [100]
    gate = IdleGpuGate(TasksConfig(gpu_idle_only=True, max_wait_steps=50), probe, lambda: step[0])  # type: ignore[arg-type]
    board = TaskBoard(lambda _e: None, gate)
    ran: list[str] = []
    board.add("suite", "my-suite", counting(1, ran))
    board.add("eval", "skill eval", counting(1, ran))
    assert board.runnable(paused=False).label == "skill eval"  # type: ignore[union-attr]  # never held
    board.run_slice(paused=False)
    board.run_slice(paused=False)
    assert ran == ["slice 0"] and board.has_work(paused=False) is False  # the suite waits while training
    assert not board.has_work(paused=True)  # paused, but another job keeps the GPU busy
    probe.utilization = 3.0
    gate.last_read = -1e9  # the next look at NVML (at most twice a second)
    assert board.has_work(paused=True)  # paused on an idle GPU: now it would slow nobody
    board.run_slice(paused=True)
    probe.utilization = 95.0
    assert board.has_work(paused=False)  # begun: it finishes, though DIO resumed and the GPU is busy
    assert board.run_slice(paused=False).state == "done"  # type: ignore[union-attr]
    assert ran == ["slice 0", "slice 0"] and not board.queue


def test_a_held_task_runs_anyway_after_max_wait_steps_and_the_option_off_changes_nothing() -> None:
    step = [0]
    gate = IdleGpuGate(TasksConfig(gpu_idle_only=True, max_wait_steps=50), FakeProbe(), lambda: step[0])  # type: ignore[arg-type]
    board = TaskBoard(lambda _e: None, gate)
    board.add("retest", "re-test", counting(1, []))
    assert not board.has_work(paused=False)
    step[0] = 49
    assert not board.has_work(paused=False)
    step[0] = 50
    assert board.has_work(paused=False) and not board.has_work(paused=True)  # overdue: the default rule
    off = IdleGpuGate(TasksConfig(), FakeProbe(), lambda: 0)  # type: ignore[arg-type]
    plain = TaskBoard(lambda _e: None, off)
    plain.add("suite", "my-suite", counting(1, []))
    assert plain.has_work(paused=False) and not plain.has_work(paused=True)


def test_a_pause_lands_between_two_slices_of_an_eval(tmp_path: Path, hatchling_dir: Path) -> None:
    # 3 slices: the validation loss, then two batches of 32 problems
    driver, worker, thread = run_engine(*make_hero(tmp_path, hatchling_dir, eval_every=4, eval_problems=64))
    try:
        driver.hello()
        first = driver.wait_until(
            lambda e: isinstance(e, p.TaskUpdated) and e.task.kind == "eval" and e.task.state == "running",
            300,
        ).task
        driver.send(p.Pause())
        driver.wait_for(p.Paused, 120)
        # the eval was not finished when the pause landed, and it waits while paused
        assert not any(
            isinstance(e, p.TaskUpdated) and e.task.id == first.id and e.task.state == "done"
            for e in driver.seen
        )
        paused_at = worker.tasks.current()
        assert paused_at is not None and paused_at.id == first.id and paused_at.done < paused_at.total
        assert not driver.conn.poll(1.0)  # nothing moves while paused: the scheduled eval waits
        driver.send(p.Resume())
        finished = driver.wait_until(
            lambda e: isinstance(e, p.TaskUpdated) and e.task.id == first.id and e.task.state == "done", 300
        ).task
        assert finished.done == finished.total == 64 and "BIN L1" in finished.result
    finally:
        worker.request_stop("test over")
        thread.join(120)
