"""Task-board figures on a fresh hatchling (`realm bench --tasks`).

1. Share: train ``--steps`` steps with the default schedule and report how much of the
   wall time went to evals (tasks) rather than training, from the tasks' own times.
2. Pause latency while an eval runs: ``--rounds`` times, ask for an eval, wait until it
   is under way, wait a random moment, send Pause and time Pause -> Paused; then Resume.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def eval_share(ui: EngineClient, steps: int, say: Any) -> dict[str, Any]:
    started = time.monotonic()
    spent: dict[int, float] = {}
    while True:
        event = ui.wait_for((p.StepCompleted, p.TaskUpdated), 600)
        if isinstance(event, p.TaskUpdated) and event.task.state == "done" and event.task.started_at:
            spent[event.task.id] = (event.task.finished_at or 0) - event.task.started_at
            say(f"  {event.task.label}: {spent[event.task.id]:.1f}s · {event.task.result}")
        if isinstance(event, p.StepCompleted) and event.step >= steps and not ui.conn.poll(0.5):
            break
    wall = time.monotonic() - started
    return {
        "evals": len(spent),
        "eval_seconds_each": round(statistics.median(spent.values()), 1) if spent else 0.0,
        "share_of_time_on_tasks": round(sum(spent.values()) / wall, 3),
        "wall_seconds": round(wall),
    }


def pause_latency(ui: EngineClient, rounds: int, say: Any) -> dict[str, Any]:
    rng = random.Random(0)
    latencies = []
    for i in range(rounds):
        ui.send(p.RunEval())
        ui.wait_until(lambda e: isinstance(e, p.TaskUpdated) and e.task.state == "running", 300)
        time.sleep(rng.uniform(0.0, 1.5))
        start = time.perf_counter()
        ui.request(p.Pause(), (p.Paused,), 300)
        latencies.append(time.perf_counter() - start)
        ui.request(p.Resume(), (p.Resumed,), 60)
        ui.wait_until(
            lambda e: isinstance(e, p.TaskUpdated) and e.task.state == "done" and e.task.kind == "eval", 600
        )
        ui.wait_for(p.StepCompleted, 60)  # a step between rounds: one eval per step
        say(f"  pause {i + 1}/{rounds}: {1000 * latencies[-1]:.0f} ms")
    return {
        "pause_during_eval_ms_p50": round(1000 * statistics.median(latencies)),
        "pause_during_eval_ms_p95": round(1000 * percentile(latencies, 0.95)),
        "pause_during_eval_ms_max": round(1000 * max(latencies)),
        "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = progress(args.json)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.run.worker import run_in_thread

    folder = Path(tempfile.mkdtemp(prefix="realm-bench-tasks-"))
    ui_end, worker, thread = run_in_thread(SaveDir(folder / "dio"), HeroConfig(name="dio"))
    ui = EngineClient(ui_end)
    try:
        ui.hello(client="bench")
        result = eval_share(ui, args.steps, say)
        result.update(pause_latency(ui, args.rounds, say))
    finally:
        worker.request_stop("bench over")
        thread.join(300)
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
