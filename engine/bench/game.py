"""`realm bench --game`: what the game costs and how it feels, measured on real processes.

- training tokens/s of the hatchling headless vs. with a (headless) game attached
  and rendering every event: the game's cost;
- pause latency: Pause sent -> Paused received, over the real socket;
- time from starting `realm play`'s UI process to its first frame;
- resident memory of the engine and of the UI process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.savedir import METRICS_NAME, SaveDir

WARMUP_STEPS = 10


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_cmd(save: Path, steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "engine",
        "--save-dir",
        str(save),
        "--max-steps",
        str(steps),
        "--checkpoint-every",
        "100000",
        "--eval-every",
        "100000",
    ]


def tokens_per_s(metrics: Path) -> float:
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    steps = [r for r in rows if "loss" in r][WARMUP_STEPS:]
    tokens = sum(r["tokens"] for r in steps[1:])
    return tokens / (steps[-1]["time"] - steps[0]["time"])


def fresh_hero(root: Path, name: str, template: Path | None) -> Path:
    save = root / name
    save.mkdir(parents=True)
    if template is not None:
        shutil.copytree(template / "base", save / "base")
    return save


def run_headless(save: Path, steps: int) -> dict[str, float]:
    proc = subprocess.Popen(engine_cmd(save, steps), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mb(proc.pid))
        time.sleep(0.5)
    return {"tokens_per_s": tokens_per_s(save / METRICS_NAME), "engine_rss_mb": peak}


def run_with_ui(save: Path, steps: int) -> dict[str, float]:
    engine = subprocess.Popen(engine_cmd(save, steps), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not SaveDir(save).socket.exists():
        time.sleep(0.1)
    ui = subprocess.Popen(
        [sys.executable, "-m", "tui.headless", str(save)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_ui = peak_engine = 0.0
    started = time.monotonic()
    cpu_before = cpu_seconds(ui.pid)
    cpu_ui = 0.0
    while engine.poll() is None:
        peak_ui = max(peak_ui, rss_mb(ui.pid))
        peak_engine = max(peak_engine, rss_mb(engine.pid))
        cpu_ui = cpu_seconds(ui.pid) or cpu_ui
        time.sleep(0.5)
    wall = time.monotonic() - started
    ui.wait(30)
    return {
        "tokens_per_s": tokens_per_s(save / METRICS_NAME),
        "ui_rss_mb": peak_ui,
        "engine_rss_mb": peak_engine,
        "ui_cpu_pct": 100 * (cpu_ui - cpu_before) / wall,
    }


def pause_latency(save: Path, rounds: int) -> list[float]:
    engine = subprocess.Popen(engine_cmd(save, 100000), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = EngineClient.connect_waiting(SaveDir(save), alive=lambda: engine.poll() is None)
        client.hello(client="bench")
        client.wait_for(p.StepCompleted)
        out = []
        for i in range(rounds):
            time.sleep(0.2 + (i % 5) * 0.07)  # land at different points of a step
            start = time.perf_counter()
            client.request(p.Pause(), (p.Paused,), 60)
            out.append(time.perf_counter() - start)
            client.request(p.Resume(), (p.Resumed,), 60)
        client.close()
        return out
    finally:
        engine.terminate()
        engine.wait(60)


def first_frame(save: Path, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "tui.headless", str(save), "--first-frame"],
            capture_output=True,
            text=True,
            check=True,
        )
        stamp = float(done.stdout.split("first_frame")[-1].split()[0])
        out.append(stamp - start)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(steps: int, repeats: int, echo: Any = print) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="realm-bench-"))
    try:
        echo("hatching a bench hero…")
        template = fresh_hero(root, "template", None)
        subprocess.run(
            engine_cmd(template, 1), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        headless, with_ui = [], []
        for i in range(repeats):  # alternate, so drift hits both alike
            echo(f"round {i + 1}/{repeats}: {steps} steps headless…")
            headless.append(run_headless(fresh_hero(root, f"h{i}", template), steps))
            echo(f"round {i + 1}/{repeats}: {steps} steps with the game attached…")
            with_ui.append(run_with_ui(fresh_hero(root, f"u{i}", template), steps))
        echo("pause latency…")
        pauses = pause_latency(fresh_hero(root, "pause", template), 20)
        echo("first frame…")
        frames = first_frame(template, 5)
        h = statistics.median(r["tokens_per_s"] for r in headless)
        u = statistics.median(r["tokens_per_s"] for r in with_ui)
        return {
            "device": "cpu",
            "cores": os.cpu_count(),
            "steps": steps,
            "repeats": repeats,
            "headless_tokens_per_s": round(h, 1),
            "with_ui_tokens_per_s": round(u, 1),
            "game_cost_pct": round(100 * (h - u) / h, 2),
            "pause_latency_ms_median": round(1000 * statistics.median(pauses), 1),
            "pause_latency_ms_p95": round(1000 * percentile(pauses, 0.95), 1),
            "first_frame_s_median": round(statistics.median(frames), 3),
            "ui_cpu_pct_of_one_core": round(statistics.median(r["ui_cpu_pct"] for r in with_ui), 2),
            "engine_rss_mb": round(max(r["engine_rss_mb"] for r in headless + with_ui), 1),
            "ui_rss_mb": round(max(r["ui_rss_mb"] for r in with_ui), 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.game")
    parser.add_argument("--steps", type=int, default=150, help="steps per run (default 150)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    echo = progress(args.json)
    result = run(args.steps, args.repeats, echo)
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
