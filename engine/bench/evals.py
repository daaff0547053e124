"""Eval throughput: problems/s with batched greedy generation vs one at a time.

`python -m engine.bench.evals [--model DIR] [--problems N]` (also `realm bench --evals`).
Runs on a fresh hatchling unless a model folder is given; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from engine.evals.skill_evals import generate_answers
from engine.model.hero import load_hero, pick_device
from engine.train.chat import ChatRenderer
from skills.registry import get_skill


def measure(model_dir: Path, problems: int, skills: list[str]) -> dict[str, object]:
    hero = load_hero(model_dir, pick_device(), "bench")
    renderer = ChatRenderer(hero.tokenizer)
    out: dict[str, object] = {"device": hero.device.type, "threads": torch.get_num_threads()}
    for skill_id in skills:
        skill = get_skill(skill_id)
        batch = skill.eval_set(1, problems)
        budget = skill.spec.max_answer_tokens
        rate: dict[int, float] = {}
        for size in (32, 1):
            start = time.perf_counter()
            generate_answers(hero.model, renderer, batch, hero.device, budget, batch_size=size)
            rate[size] = len(batch) / (time.perf_counter() - start)
            out[f"{skill_id}_batch{size}_problems_per_s"] = round(rate[size], 2)
        out[f"{skill_id}_batching_speedup"] = round(rate[32] / rate[1], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="a model folder (default: a fresh hatchling)")
    parser.add_argument("--problems", type=int, default=64, help="problems per measurement (default 64)")
    parser.add_argument("--skills", default="bin,sy", help="comma-separated skill ids (default bin,sy)")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.model:
        folder = args.model
    else:
        from engine.model.hatchling import hatch

        folder = hatch(Path(tempfile.mkdtemp(prefix="realm-hatchling-")))
    print(json.dumps(measure(folder, args.problems, args.skills.split(","))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
