"""What the worker does for the user's eval suites: add, list and compare at once; runs
are tasks on the board (a batch of questions per slice), on demand, on a schedule (every
N steps) and at each automatic loot, whose score then becomes the loot's metric."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.evals import commands as suite_commands
from engine.evals import runner
from engine.evals.suites import SuiteError, read_suite
from engine.oracle.chat import OracleError
from engine.protocol import messages as p
from engine.run import spar_work
from engine.run.server import ClientSession
from engine.run.tasks import TaskBody
from engine.run.vault_work import weights_of

if TYPE_CHECKING:
    from engine.run.worker import Worker

log = logging.getLogger("engine.run.suite_work")


def suite_command(w: Worker, client: ClientSession, command: p.SuiteCommand | p.Spar) -> None:
    if isinstance(command, p.Spar):  # the other way DIO is measured: its own mistakes
        spar_work.spar(w, client, command)
        return
    try:
        if isinstance(command, p.RunSuite):
            suite_commands.suite_path(w.save, command.suite)  # an unknown suite is refused now
            if command.loot is not None:
                w.vault.find(command.loot)
            schedule(w, command.suite, command.loot, client)
            return
        message, data = suite_commands.carry_out(w.save, w.ledger, command)
    except (suite_commands.SuiteCommandError, SuiteError, OSError) as exc:
        client.send(p.SuiteReply(False, str(exc)))
        return
    except KeyError as exc:
        client.send(p.SuiteReply(False, str(exc.args[0])))
        return
    if message and not isinstance(command, p.CompareSuite):
        w.note(message, kind="eval")
    client.send(p.SuiteReply(True, message, json.dumps(data) if data is not None else ""))


def suite_names(w: Worker) -> list[str]:
    return sorted(path.stem for path in suite_commands.suites_folder(w.save).glob("*.jsonl"))


def schedule(w: Worker, suite: str, loot: str | None, client: ClientSession | None = None) -> None:
    where = loot or "the live weights"
    w.tasks.add(
        "suite",
        f"{Path(suite).stem} on {where}",
        run(w, Path(suite).stem, loot, client),
        asked=client is not None,
    )


def schedule_all(w: Worker, loot: str | None) -> None:
    """Every suite, on the live weights (``loot``: they are that loot's, just saved)."""
    for name in suite_names(w):
        w.tasks.add("suite", f"{name} at step {w.progress.step:,}", run(w, name, loot, None, live=True))


def run(
    w: Worker, suite_name: str, loot: str | None, client: ClientSession | None, live: bool = False
) -> TaskBody:
    try:
        suite = read_suite(suite_commands.suite_path(w.save, suite_name))
    except (suite_commands.SuiteCommandError, SuiteError, OSError) as exc:
        return _refuse(client, str(exc))
    budget = runner.token_budget(suite, w.config.evals.max_new_tokens)
    result: dict[str, Any]
    try:
        with weights_of(w, None if live else loot) as (model, _digest, step, _where, _name):
            result = yield from runner.run_suite(model, w.renderer, w.hero.device, suite, budget)
    except OracleError as exc:
        return _refuse(client, str(exc))
    target = loot if loot is not None else f"live@{step}"
    runner.keep(w.ledger, result, target, step, loot if loot is not None else None)
    message = runner.summary(result, target)
    w.note(message, kind="eval")
    if beats_base(runner.latest_runs(w.ledger, suite_name)):
        w.unlocked(w.achievements.unlock("beat-base"))
    if client is not None:
        client.send(p.SuiteReply(True, message, json.dumps(result)))
    return message


def beats_base(runs: dict[str, dict[str, Any]]) -> bool:
    """Some trained weights (loot or live) scored above the base model on this suite."""
    base = next((run for target, run in runs.items() if target.strip().lower() == "base"), None)
    if base is None:
        return False
    trained = [run for target, run in runs.items() if target.strip().lower() != "base"]
    return any(float(run["score"]) > float(base["score"]) for run in trained)


def _refuse(client: ClientSession | None, why: str) -> str:
    if client is not None:
        client.send(p.SuiteReply(False, why))
    return f"refused: {why}"
