"""Does DIO climb? (`realm bench --growth`): the learning curve of a fresh hatchling.

Trains a fresh hatchling with the default config (or ``--set`` overrides) in this
process, with the engine's own worker: the same stream, curriculum, evals and gates as
`realm play`. Every ``game.eval_every`` steps it runs the eval and records the step,
the minutes so far (training and evals both count: a player waits for both), and each
skill's level and accuracy. It stops after ``--minutes`` or ``--steps``.

Lever experiments change one thing at a time (``--set game.skills='{"bin": 1, "sy": 0.3}'``,
``--tokenizer gpt2``) and compare accuracy at the same step counts; run two at once with
``--set train.threads=1`` each to halve the wall time (steps stay comparable, minutes
do not: time the winner alone).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir


class Quiet:
    def send(self, event: Any) -> None:
        pass

    def broadcast(self, event: Any) -> None:
        pass


def with_overrides(config: HeroConfig, pairs: list[str]) -> HeroConfig:
    """``section.field=JSON`` pairs applied to a config (validated by its dataclasses)."""
    data = json.loads(config.to_json())
    for pair in pairs:
        path, sep, raw = pair.partition("=")
        if not sep or "." not in path:
            raise SystemExit(f"--set wants section.field=value, got {pair!r}")
        section, name = path.split(".", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        data.setdefault(section, {})[name] = value
    return HeroConfig.from_dict(data)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="stop after this much time (default 20)")
    parser.add_argument("--steps", type=int, default=0, help="or after this many steps (0: no limit)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="a hero config override, e.g. game.skills='{\"bin\": 1, \"sy\": 0.3}'")  # fmt: skip
    parser.add_argument("--tokenizer", help="the hatchling's pre-tokenizer (default: the hatchling's)")
    parser.add_argument("--label", default="", help="a name for this run in the output")
    parser.add_argument("--out", type=Path, help="also write the curve here (JSON)")
    parser.add_argument("--samples", action="store_true", help="keep one answer per skill per eval")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = progress(args.json)

    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.model.hatchling import HatchlingSpec, hatch
    from engine.run import guard
    from engine.run.server import EngineServer
    from engine.run.tasks import run_to_end
    from engine.run.worker import RESTARTS, Worker

    config = with_overrides(HeroConfig(name="dio"), args.set)
    folder = Path(tempfile.mkdtemp(prefix="realm-bench-growth-"))
    save = SaveDir(folder / "dio")
    spec = HatchlingSpec(pretokenizer=args.tokenizer) if args.tokenizer else HatchlingSpec()
    hatch(save.base_model, spec)
    worker = Worker(save, config, EngineServer())
    worker.start()
    worker.server = Quiet()  # type: ignore[assignment]
    game = config.game
    started = time.monotonic()
    train_seconds = 0.0
    curve: list[dict[str, Any]] = []
    tokens = 0
    while True:
        elapsed = time.monotonic() - started
        if args.steps and worker.progress.step >= args.steps:
            break
        if not args.steps and elapsed >= args.minutes * 60:
            break
        t0 = time.monotonic()
        stepped = worker._train_step()
        guard.after_step(worker, stepped)  # skips are recorded; a rollback ends the curve
        train_seconds += time.monotonic() - t0
        if worker.stop_reason in RESTARTS or worker.paused:
            say(f"  the watchdog stopped the curve at step {worker.progress.step}")
            break
        tokens += stepped.tokens
        step = worker.progress.step
        if step % game.eval_every == 0:
            run_to_end(worker.eval_task(loot_after=False))
            row: dict[str, Any] = {
                "step": step,
                "minutes": round((time.monotonic() - started) / 60, 2),
                "val_loss": round(worker.progress.val_loss or 0.0, 4),
            }
            for skill_id, scores in worker.eval_results.items():
                row[skill_id] = {"level": scores["level"], "accuracy": round(scores["accuracy"], 3)}
            if args.samples:
                row["samples"] = {k: v.sample_answer[:160] for k, v in worker.samples.items()}
            curve.append(row)
            say("  " + json.dumps(row))
    passed = {
        skill_id: {str(level): at for level, at in track.mastered.items()}
        for skill_id, track in worker.curriculum.tracks.items()
    }
    minutes_at = {row["step"]: row["minutes"] for row in curve}
    watched = [dict(r) for r in worker.ledger.watchdog.all()]
    worker.keeper.stop()
    result = {
        "label": args.label,
        "config": {"train": asdict(config.train), "skills": game.skills},
        "tokenizer": spec.pretokenizer,
        "steps": worker.progress.step,
        "minutes": round((time.monotonic() - started) / 60, 2),
        "tokens_per_s": round(tokens / max(train_seconds, 1e-9)),
        "levels": {sid: t.level for sid, t in worker.curriculum.tracks.items()},
        "passed_at_step": passed,
        "passed_at_minute": {
            sid: {lvl: minutes_at.get(at) for lvl, at in levels.items()} for sid, levels in passed.items()
        },
        "watchdog": [f"{r['kind']} at step {r['step']}" for r in watched],
        "curve": curve,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    brief = {k: v for k, v in result.items() if k != "curve"} if not args.json else result
    show(brief, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
