"""Running an eval suite against some weights, and keeping the result.

``run_suite`` is a task body: it answers the questions a batch at a time (greedy,
through the hero's chat template, as every eval) and yields its progress, then scores
every answer. ``keep`` writes the run into the ledger (table ``suite_runs``, with every
question's answer and score) and, for a loot, the score into the loot's ``metrics`` —
so "best by my-suite" is a Vault metric like any other.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import torch

from engine.evals import scorers
from engine.evals.skill_evals import EVAL_BATCH, answer_batches
from engine.evals.suites import Suite
from engine.store.ledger import Ledger
from engine.train.chat import ChatRenderer

DEFAULT_MAX_TOKENS = 128


def token_budget(suite: Suite, default: int = DEFAULT_MAX_TOKENS) -> int:
    """Enough for every question: a skill's own answer budget, else ``default``."""
    from skills.registry import get_skill

    budgets = [
        get_skill(str(q.row["skill"])).spec.max_answer_tokens for q in suite.questions if q.scorer == "skill"
    ]
    return max([default if any(q.scorer != "skill" for q in suite.questions) else 0, *budgets])


def run_suite(
    model: Any, renderer: ChatRenderer, device: torch.device, suite: Suite, max_new_tokens: int
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    total = len(suite.questions)
    answers: list[str] = []
    started = time.monotonic()
    for batch in answer_batches(
        model, renderer, [list(q.messages) for q in suite.questions], device, max_new_tokens, EVAL_BATCH
    ):
        answers += batch
        yield len(answers), total
    rows: list[dict[str, Any]] = []
    for question, answer in zip(suite.questions, answers, strict=True):
        rows.append(
            {
                "id": question.id,
                "score": scorers.score(question.row, answer, question.scorer),
                "answer": answer,
                "category": question.category,
                "difficulty": question.difficulty,
            }
        )
    return {
        "suite": suite.name,
        "score": sum(r["score"] for r in rows) / len(rows),
        "questions": rows,
        "by_category": breakdown(rows, "category"),
        "by_difficulty": breakdown(rows, "difficulty"),
        "seconds": round(time.monotonic() - started, 2),
    }


def breakdown(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for row in rows:
        if row[key]:
            groups.setdefault(row[key], []).append(row["score"])
    return {name: sum(v) / len(v) for name, v in sorted(groups.items())}


def keep(ledger: Ledger, result: dict[str, Any], target: str, step: int, loot: str | None) -> None:
    """Record a run; ``target`` names the weights ("step-000200", "live@412", "model:/path")."""
    ledger.db.table("suite_runs").insert({**result, "target": target, "step": step, "time": time.time()})
    if loot is not None:
        row = next((r for r in ledger.live_loot() if r["name"] == loot), None)
        if row is not None:
            metrics = {**(row.get("metrics") or {}), result["suite"]: result["score"]}
            ledger.update_loot(loot, {"metrics": metrics})


def summary(result: dict[str, Any], target: str) -> str:
    parts = [f"{result['suite']} on {target}: {result['score']:.0%} of {len(result['questions'])} questions"]
    if result["by_category"]:
        parts.append(", ".join(f"{k} {v:.0%}" for k, v in result["by_category"].items()))
    return " · ".join(parts)


def latest_runs(ledger: Ledger, suite: str) -> dict[str, dict[str, Any]]:
    """The newest run of ``suite`` for each target."""
    runs: dict[str, dict[str, Any]] = {}
    for run in sorted(ledger.db.table("suite_runs").all(), key=lambda r: r.get("time", 0)):
        if run.get("suite") == suite:
            runs[str(run["target"])] = dict(run)
    return runs
