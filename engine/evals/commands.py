"""Suite commands, carried out in one place for both paths (as quests and the vault):

- online, inside the engine (``engine/run/commands.py``); a run is a task on the board;
- offline, `realm evals …` with the hero's engine down: ``python -m engine.evals.commands
  --save-dir DIR --command JSON [--model PATH]``. Adding and running take the engine's
  lock (they write); listing and comparing only read. A run loads torch; the rest does not.

Exit status offline: 0 done, 1 refused, 2 bad request, 3 an engine holds the lock. The
last line printed is one JSON object: ``{"ok", "message", "data"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.evals import runner
from engine.evals.compare import paired
from engine.evals.suites import SuiteError, read_suite, suite_name
from engine.protocol import messages as p
from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir
from engine.quests.rows import read_user_file
from engine.store.atomic import write_text
from engine.store.ledger import Ledger

EXIT_ENGINE_RUNNING = 3


class SuiteCommandError(Exception):
    """A suite command that cannot be carried out; the message says why."""


def suites_folder(save: SaveDir) -> Path:
    return save.root / "suites"


def suite_path(save: SaveDir, name: str) -> Path:
    path = suites_folder(save) / f"{Path(name).stem}.jsonl"
    if not path.is_file():
        known = ", ".join(sorted(f.stem for f in suites_folder(save).glob("*.jsonl"))) or "none yet"
        raise SuiteCommandError(f"no suite {name!r} (suites: {known}); add one with `realm evals add FILE`")
    return path


def add(save: SaveDir, source: Path) -> str:
    try:
        name = suite_name(source)
        suite = read_suite(source)
    except SuiteError as exc:
        raise SuiteCommandError(f"{source.name} refused: {exc}") from None
    except OSError as exc:
        raise SuiteCommandError(f"cannot read {source}: {exc.strerror or exc}") from None
    target = suites_folder(save) / f"{name}.jsonl"
    again = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    _, text = read_user_file(source, "eval suite")  # as read_suite read it: unpacked, UTF-8
    write_text(target, text)
    categories = f", categories {', '.join(suite.categories())}" if suite.categories() else ""
    return f"suite {name} {'replaced' if again else 'added'}: {counted(len(suite.questions), 'question')}{categories}"


def listing(save: SaveDir, ledger: Ledger | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(suites_folder(save).glob("*.jsonl")):
        try:
            questions = len(read_suite(path).questions)
        except (SuiteError, OSError) as exc:
            out.append({"suite": path.stem, "questions": 0, "scores": {}, "problem": str(exc)})
            continue
        runs = runner.latest_runs(ledger, path.stem) if ledger is not None else {}
        scores = {target: run["score"] for target, run in runs.items()}
        out.append({"suite": path.stem, "questions": questions, "scores": scores})
    return out


def compare(ledger: Ledger | None, suite: str, a: str, b: str) -> dict[str, Any]:
    runs = runner.latest_runs(ledger, suite) if ledger is not None else {}
    missing = [t for t in (a, b) if t not in runs]
    if missing:
        have = ", ".join(runs) or "none"
        raise SuiteCommandError(
            f"no run of {suite} on {', '.join(missing)} (runs: {have}); "
            f"run it first: realm evals run {suite} --loot {missing[0]}"
        )
    scores_a = {q["id"]: q["score"] for q in runs[a]["questions"]}
    scores_b = {q["id"]: q["score"] for q in runs[b]["questions"]}
    ids = [qid for qid in scores_a if qid in scores_b]
    result = paired(ids, [scores_a[i] for i in ids], [scores_b[i] for i in ids])
    return {
        "suite": suite,
        "a": a,
        "b": b,
        "mean_a": result.mean_a,
        "mean_b": result.mean_b,
        "fixed": list(result.fixed),
        "broken": list(result.broken),
        "both_right": list(result.both_right),
        "both_wrong": list(result.both_wrong),
        "p_value": result.p_value,
        "verdict": result.verdict,
    }


def carry_out(save: SaveDir, ledger: Ledger | None, command: p.SuiteCommand) -> tuple[str, Any]:
    """Every suite command but a run (it needs weights): (reply, data for --json)."""
    match command:
        case p.AddSuite():
            return add(save, Path(command.path)), None
        case p.ListSuites():
            return "", listing(save, ledger)
        case p.CompareSuite():
            suite_path(save, command.suite)
            result = compare(ledger, Path(command.suite).stem, command.a, command.b)
            return result["verdict"], result
        case p.RunSuite():
            raise SuiteCommandError("a run needs weights: the engine or the offline runner does it")


# --------------------------------------------------------------------------- offline


def run_offline(
    save: SaveDir, ledger: Ledger | None, command: p.RunSuite, model_path: Path | None
) -> tuple[str, Any]:
    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.oracle.chat import OracleError
    from engine.oracle.shelf import ShelfOracle

    suite = read_suite(suite_path(save, command.suite))
    if model_path is not None:
        model, renderer, device = load_model_folder(model_path)
        target, step, loot = f"model:{model_path}", 0, None
    else:
        oracle = ShelfOracle(save, loaded=1)
        try:
            name, step, folder = oracle.resolve(command.loot or "latest")
            model, _digest = oracle.model(name, folder)
        except (KeyError, OracleError) as exc:
            raise SuiteCommandError(str(exc.args[0] if exc.args else exc)) from None
        renderer, device, target, loot = oracle.renderer, oracle.device, name, (name if folder else None)
    budget = runner.token_budget(suite, _default_tokens(save))
    result = _finish(runner.run_suite(model, renderer, device, suite, budget))
    if ledger is not None and model_path is None:
        runner.keep(ledger, result, target, step, loot)
    return runner.summary(result, target), result


def load_model_folder(path: Path) -> tuple[Any, Any, Any]:
    """Any local Hugging Face model folder, to compare a suite with (not kept)."""
    from transformers import AutoModelForCausalLM

    from engine.model.hero import pick_device
    from engine.model.tokenizer import load_tokenizer
    from engine.train.chat import ChatRenderer

    device = pick_device()
    try:
        tokenizer = load_tokenizer(path)  # a base model gets the chat format a hero of it would
        model = AutoModelForCausalLM.from_pretrained(path).to(device)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        raise SuiteCommandError(f"--model {path}: {exc}") from None
    return model, ChatRenderer(tokenizer), device


def _default_tokens(save: SaveDir) -> int:
    return int(save.read_config().get("evals", {}).get("max_new_tokens", runner.DEFAULT_MAX_TOKENS))


def _finish(body: Any) -> Any:
    while True:
        try:
            next(body)
        except StopIteration as end:
            return end.value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.evals.commands")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--command", required=True, help="a suite command as JSON (messages.command_to_dict)")
    parser.add_argument("--model", type=Path, help="RunSuite: a local HF model folder instead of a loot")
    args = parser.parse_args(argv)
    try:
        command = p.command_from_dict(json.loads(args.command))
    except ValueError as exc:
        print(f"bad request: {exc}", file=sys.stderr)
        return 2
    if not isinstance(command, (p.AddSuite, p.ListSuites, p.RunSuite, p.CompareSuite)):
        print(f"bad request: {type(command).__name__} is not a suite command", file=sys.stderr)
        return 2
    save = SaveDir(args.save_dir)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    writes = isinstance(command, p.AddSuite) or (isinstance(command, p.RunSuite) and args.model is None)
    lock = save.try_lock() if writes else None
    if writes and lock is None:
        return EXIT_ENGINE_RUNNING
    try:
        ledger = Ledger(save.ledger, read_only=not writes) if save.ledger.exists() or writes else None
        if isinstance(command, p.RunSuite):
            message, data = run_offline(save, ledger, command, args.model)
        else:
            message, data = carry_out(save, ledger, command)
        ok = True
    except (SuiteCommandError, SuiteError, OSError, ValueError) as exc:
        ok, message, data = False, str(exc), None
    finally:
        if lock is not None:
            lock.close()
    print(json.dumps({"ok": ok, "message": message, "data": data}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
