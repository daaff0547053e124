"""What the rehearsal buffer does to forgetting (`realm bench --campaign`).

A fresh default hatchling follows a two-phase campaign shaped like the shipped
``specialist`` one: a general phase on BIN and SY (``--steps1``), then a specialist
phase on SY alone (``--steps2``) whose rehearsal share is each of ``--rehearsal``
(e.g. 0 and 0.2). Every variant starts from the same seed, so the general phase is the
same run; the bench checks that. It reports each skill's accuracy after the general
phase and after the specialist one, on the same eval set (each skill's level at the end
of phase 1), so "forgotten" is a drop on the very problems DIO knew.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir

CAMPAIGN = """\
name: forgetting-{tag}
when_done: stop
phases:
  - name: general
    skills: {{bin: 1.0, sy: 1.0}}
    steps: {steps1}
    lr: 2.0e-3
    warmup_steps: 50
    min_lr_ratio: 0.3
  - name: specialist
    skills: {{sy: 1.0}}
    steps: {steps2}
    lr: 1.0e-3
    schedule: constant
    warmup_steps: 20
    rehearsal: {rehearsal}
"""


def accuracy(worker: Any, skill_id: str, level: int, problems: int) -> float:
    from engine.evals.skill_evals import answer_batches, score_answers

    skill = worker.curriculum.skills[skill_id]
    chosen = skill.eval_set(level, problems)
    answers: list[str] = []
    for batch in answer_batches(
        worker.hero.model, worker.renderer, chosen, worker.hero.device, skill.spec.max_answer_tokens
    ):
        answers += batch
    return float(score_answers(skill, chosen, answers).accuracy)


def variant(root: Path, rehearsal: float, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from engine.model.hatchling import HatchlingSpec, hatch
    from engine.run.server import EngineServer
    from engine.run.worker import Worker
    from engine.train.campaign_files import install

    save = SaveDir(root / f"r{rehearsal:g}" / "dio")
    save.create()
    hatch(save.base_model, HatchlingSpec())
    file = save.root.parent / "campaign.yaml"
    file.write_text(
        CAMPAIGN.format(tag=f"{rehearsal:g}", steps1=args.steps1, steps2=args.steps2, rehearsal=rehearsal)
    )
    install(save, file)
    config = HeroConfig(name="dio")
    started = time.monotonic()
    first = Worker(save, config, EngineServer())
    first.start()
    first.run()  # the general phase: it ends in a restart
    levels = {sid: t.level for sid, t in first.curriculum.tracks.items()}
    after1 = {sid: accuracy(first, sid, lvl, args.problems) for sid, lvl in levels.items()}
    say(f"  rehearsal {rehearsal:g}: after general (step {first.progress.step}) {after1} at {levels}")
    first.ledger.close()
    second = Worker(save, config, EngineServer())
    second.start()
    second.run()  # the specialist phase, then the campaign stops
    after2 = {sid: accuracy(second, sid, lvl, args.problems) for sid, lvl in levels.items()}
    say(f"  rehearsal {rehearsal:g}: after specialist (step {second.progress.step}) {after2}")
    second.ledger.close()
    return {
        "rehearsal": rehearsal,
        "levels_after_general": levels,
        "after_general": after1,
        "after_specialist": after2,
        "levels_after_specialist": {sid: t.level for sid, t in second.curriculum.tracks.items()},
        "minutes": round((time.monotonic() - started) / 60, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps1", type=int, default=400, help="steps of the general phase (default 400)")
    parser.add_argument("--steps2", type=int, default=400, help="steps of the specialist phase (default 400)")
    parser.add_argument("--rehearsal", default="0,0.2", help="shares to compare (default 0,0.2)")
    parser.add_argument("--problems", type=int, default=64, help="eval problems per skill (default 64)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = progress(args.json)

    from engine.run.main import quiet_libraries

    quiet_libraries()
    root = Path(tempfile.mkdtemp(prefix="realm-bench-campaign-"))
    shares = [float(x) for x in args.rehearsal.split(",")]
    runs = [variant(root, share, args, say) for share in shares]
    same_start = all(r["after_general"] == runs[0]["after_general"] for r in runs)
    result: dict[str, Any] = {
        "steps_general": args.steps1,
        "steps_specialist": args.steps2,
        "problems": args.problems,
    }
    for run in runs:
        tag = f"rehearsal {run['rehearsal']:g}"
        for sid, before in run["after_general"].items():
            after = run["after_specialist"][sid]
            level = run["levels_after_general"][sid]
            result[f"{tag}: {sid.upper()} L{level}"] = f"{before:.0%} → {after:.0%} ({after - before:+.0%})"
        result[f"{tag}: minutes"] = run["minutes"]
    result["general phase identical across runs"] = same_start
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
