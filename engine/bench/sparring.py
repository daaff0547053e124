"""Does sparring help? (`realm bench --sparring`)

On a fresh hatchling: train ``--steps`` steps and save loot; spar on BIN (``--problems``
fresh problems at DIO's level); train until the sparring quest is done (S steps) and
measure DIO on exactly the problems it had missed. Then, from a copy of the same loot,
train S steps without the quest and measure the same problems: sparring vs the same
number of steps of plain training.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol import messages as p
from engine.protocol.config import GameConfig, HeroConfig, TrainConfig
from engine.protocol.savedir import SaveDir


class Quiet:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, event: Any) -> None:
        self.sent.append(event)


def accuracy(worker: Any, problems: list[Any]) -> float:
    from engine.evals.skill_evals import generate_answers

    skill = worker.curriculum.skills["bin"]
    answers = generate_answers(
        worker.hero.model, worker.renderer, problems, worker.hero.device, skill.spec.max_answer_tokens
    )
    return sum(skill.score(q, a) >= 1.0 for q, a in zip(problems, answers, strict=True)) / len(problems)


def step(worker: Any) -> None:
    worker.keeper.poll()
    worker._train_step()
    if worker.keeper.finished:
        worker.complete_quest()


def one_run(steps: int, problems: int, seed: int, say: Any) -> dict[str, Any]:
    """One sparring-vs-plain comparison from a fresh hatchling trained with ``seed``."""
    from engine.run import spar_work
    from engine.run.server import EngineServer
    from engine.run.worker import Worker

    folder = Path(tempfile.mkdtemp(prefix="realm-bench-spar-"))
    config = HeroConfig(
        name="dio",
        train=TrainConfig(seed=seed),
        game=GameConfig(eval_every=10**6, checkpoint_every=10**6, skills={"bin": 1.0}),
    )
    a = Worker(SaveDir(folder / "dio"), config, EngineServer())
    a.start()
    started = time.monotonic()
    for i in range(steps):
        step(a)
        if (i + 1) % 100 == 0:
            say(f"  seed {seed}: step {i + 1}")
    a.take_loot("manual")
    shutil.copytree(folder / "dio", folder / "plain", ignore=shutil.ignore_patterns("engine.*", "hero.json"))
    spar_work.spar(a, Quiet(), p.Spar("bin", problems))  # type: ignore[arg-type]
    a.tasks.drain()
    name = next((q.name for q in a.keeper.queue.all() if q.name.startswith(spar_work.PREFIX)), None)
    if name is None:  # DIO answered every problem: nothing to spar on
        a.keeper.stop()
        shutil.rmtree(folder, ignore_errors=True)
        say(f"  seed {seed}: DIO missed none of {problems}; no sparring quest")
        return {"seed": seed, "missed": 0, "seconds": round(time.monotonic() - started)}
    meta = spar_work.sidecar(a, name) or {}
    skill = a.curriculum.skills["bin"]
    missed = [skill.problem_from_record(r) for r in meta["problems"]]
    say(f"  seed {seed}: DIO missed {len(missed)} of {problems}; training the sparring quest {name}")
    before = accuracy(a, missed)
    begin = a.progress.step
    while a.keeper.queue.get(name).state != "done":
        step(a)
    spent = a.progress.step - begin
    after_spar = accuracy(a, missed)
    a.tasks.drain()  # the engine's own re-test
    outcome = a.keeper.queue.get(name).outcome
    b = Worker(SaveDir(folder / "plain"), config, EngineServer())
    b.start()
    for _ in range(spent):
        step(b)
    after_plain = accuracy(b, missed)
    a.keeper.stop()
    b.keeper.stop()
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "seed": seed,
        "missed": len(missed),
        "accuracy_on_missed_before": round(before, 3),
        "sparring_quest_steps": spent,
        "accuracy_after_sparring": round(after_spar, 3),
        "engine_retest": outcome,
        "accuracy_after_plain_training": round(after_plain, 3),
        "seconds": round(time.monotonic() - started),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=60, help="training before sparring (60: DIO still misses many)"
    )
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument(
        "--seeds", type=int, default=1, help="repeat with training seeds 1..N and report each and the mean"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.steps < 1 or args.problems < 1 or args.seeds < 1:
        parser.error("--steps, --problems and --seeds must be at least 1")
    say = progress(args.json)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    runs = [one_run(args.steps, args.problems, seed, say) for seed in range(1, args.seeds + 1)]
    sparred = [r for r in runs if r["missed"]]
    gained = [r["accuracy_after_sparring"] - r["accuracy_after_plain_training"] for r in sparred]
    result: dict[str, Any] = {"steps_before": args.steps, "problems": args.problems, "runs": runs}
    if sparred:
        result |= {
            "mean_accuracy_after_sparring": round(
                sum(r["accuracy_after_sparring"] for r in sparred) / len(sparred), 3
            ),
            "mean_accuracy_after_plain_training": round(
                sum(r["accuracy_after_plain_training"] for r in sparred) / len(sparred), 3
            ),
            "sparring_won": sum(g > 0 for g in gained),
            "plain_won": sum(g < 0 for g in gained),
            "ties": sum(g == 0 for g in gained),
        }
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
