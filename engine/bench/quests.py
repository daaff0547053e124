"""Quest figures: validation throughput (rows/s) and inbox-to-board latency.

`python -m engine.bench.quests [--rows N] [--drops N]` (also `realm bench --quests`).
1. Writes an N-row JSONL file (chat, ShareGPT, Alpaca and prompt/completion rows, with
   some duplicates) and times the intake check (`read_trainable`: `read_quest` and the
   cheap checks) and the standard checks (`check_rows`, which renders every row with the
   hatchling's tokenizer).
2. Runs an engine on a fresh hatchling (in this process, over a Pipe, as the tests do),
   drops small files into its real inbox, and times file-written -> QuestBoard event.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.config import HeroConfig
from engine.quests.checks import check_rows
from engine.quests.format import read_quest
from engine.quests.queue import read_trainable
from engine.train.chat import ChatRenderer


def sample_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "quest",
        "hero",
        "dragon",
        "gold",
        "sword",
        "binary",
        "number",
        "answer",
        "realm",
        "train",
        "loss",
        "level",
    ]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        prompt = " ".join(rng.choices(words, k=rng.randint(5, 30))) + f" #{i}"
        answer = " ".join(rng.choices(words, k=rng.randint(3, 40)))
        shape = i % 4
        if i % 50 == 49:
            rows.append(rows[-1])  # a duplicate now and then
        elif shape == 0:
            rows.append(
                {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
            )
        elif shape == 1:
            rows.append(
                {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}
            )
        elif shape == 2:
            rows.append({"instruction": prompt, "input": "", "output": answer})
        else:
            rows.append({"prompt": prompt, "completion": answer})
    return rows


def validation_throughput(folder: Path, rows: int, model: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    sample = sample_rows(rows)
    path = folder / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in sample), encoding="utf-8")
    start = time.perf_counter()
    read_trainable(path)  # what the inbox and `realm quest add` run: read_quest + the cheap checks
    intake = time.perf_counter() - start
    array = folder / "big.json"  # the same rows as one JSON array (Alpaca's shape)
    array.write_text("[\n" + ",\n".join(json.dumps(r) for r in sample) + "\n]\n", encoding="utf-8")
    start = time.perf_counter()
    read_trainable(array)
    intake_array = time.perf_counter() - start
    quest = read_quest(path)  # the checker reads the file again, whole
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(model))
    start = time.perf_counter()
    report = check_rows(quest.rows, quest.lines, lambda r: len(renderer.render_row(r)), 256)
    checks = time.perf_counter() - start
    return {
        "validation_rows": rows,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "intake_rows_per_s": round(rows / intake),
        "intake_array_rows_per_s": round(rows / intake_array),
        "standard_checks_rows_per_s": round(rows / checks),
        "kept_rows": len(report.kept),
    }


def inbox_latency(folder: Path, model: Path, drops: int) -> dict[str, Any]:
    from engine.protocol.savedir import SaveDir
    from engine.run.worker import run_in_thread

    save = SaveDir(folder / "saves" / "bench")
    base = HeroConfig(name="bench", model=str(model))
    config = replace(base, game=replace(base.game, eval_every=100_000, checkpoint_every=100_000))
    ui_end, worker, thread = run_in_thread(save, config)
    ui = EngineClient(ui_end)
    latencies = []
    try:
        ui.hello(client="bench")
        for i in range(drops):
            name = f"drop{i}.jsonl"
            # its own content: the same file twice is refused as a duplicate, not queued
            row = json.dumps({"prompt": f"ping {i}", "completion": "pong"}) + "\n"
            start = time.perf_counter()
            (save.root / "inbox" / name).write_text(row * 20)
            ui.wait_until(partial(on_board, name), what=f"{name} on the board")
            latencies.append(time.perf_counter() - start)
    finally:
        worker.request_stop("bench over")
        thread.join(60)
    return {
        "inbox_to_board_median_s": round(statistics.median(latencies), 2),
        "inbox_to_board_max_s": round(max(latencies), 2),
        "drops": drops,
    }


def on_board(name: str, event: Any) -> bool:
    return isinstance(event, p.QuestBoard) and any(q.name == name for q in event.quests)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=100_000, help="rows in the validation file (default 100000)"
    )
    parser.add_argument(
        "--drops", type=int, default=5, help="files dropped for the latency figure (default 5)"
    )
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    from engine.model.hatchling import hatch

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = Path(tempfile.mkdtemp(prefix="realm-bench-quests-"))
    model = hatch(folder / "hatchling")
    out = validation_throughput(folder, args.rows, model)
    out.update(inbox_latency(folder, model, args.drops))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
