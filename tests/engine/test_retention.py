"""The retention policy on synthetic ledgers: every rule, the disk budget, and never
the resume point."""

from __future__ import annotations

from typing import Any

from engine.protocol.config import VaultConfig
from engine.store import retention


def row(step: int, reason: str = "auto", size: int = 100, **extra: Any) -> dict[str, Any]:
    return {"name": f"step-{step:06d}", "step": step, "time": float(step), "reason": reason,
            "size_bytes": size, **extra}  # fmt: skip


def kept(plan: retention.Plan) -> dict[str, tuple[str, ...]]:
    return {v.name: v.kept_because for v in plan.verdicts if v.kept_because}


def test_the_newest_are_kept_whatever_their_reason_and_the_rest_go_with_a_reason() -> None:
    rows = [row(10, "quest"), row(20, "stop"), row(30), row(40, "manual")]
    plan = retention.plan(rows, VaultConfig(keep_last=2), "step-000040", None)
    assert set(kept(plan)) == {"step-000030", "step-000040"}
    assert [v.name for v in plan.doomed] == ["step-000010", "step-000020"]
    assert plan.doomed[0].delete_reason == "older than the 2 newest, not pinned, not best"
    assert kept(plan)["step-000040"] == (retention.RESUME, "one of the 2 newest")


def test_pinned_best_and_resume_point_are_kept() -> None:
    rows = [
        row(10, pinned=True),
        row(20, val_loss=0.5, evals={"bin": {"accuracy": 1.0, "level": 1}}),
        row(30, val_loss=0.9, evals={"bin": {"accuracy": 0.6, "level": 3}}),  # level beats accuracy
        row(40, val_loss=0.4),
        row(50),
        row(60),
    ]
    plan = retention.plan(rows, VaultConfig(keep_last=1), "step-000050", None)
    assert kept(plan) == {
        "step-000010": ("pinned",),
        "step-000030": ("best bin",),
        "step-000040": ("best val loss",),
        "step-000050": (retention.RESUME,),
        "step-000060": ("one of the 1 newest",),
    }
    assert [v.name for v in plan.doomed] == ["step-000020"]
    assert not retention.plan(rows, VaultConfig(keep_last=1, keep_best=False), None, None).kept_because(
        "step-000030"
    )


def test_the_disk_budget_takes_the_oldest_recent_loot_first_never_a_protected_one() -> None:
    rows = [row(10, size=500, pinned=True), row(20, size=300), row(30, size=300), row(40, size=300)]
    plan = retention.plan(rows, VaultConfig(keep_last=3), "step-000040", budget_bytes=1200)
    assert [v.name for v in plan.doomed] == ["step-000020"]
    assert "over the disk budget" in plan.doomed[0].delete_reason
    assert plan.kept_bytes == 1100 and not plan.over_budget
    tight = retention.plan(rows, VaultConfig(keep_last=3), "step-000040", budget_bytes=100)
    assert set(kept(tight)) == {"step-000010", "step-000040"}  # pinned + resume survive any budget
    assert tight.over_budget


def test_after_a_rewind_recency_is_by_save_time_not_step() -> None:
    """The set-aside loot of the old line have higher steps but were saved earlier."""
    rows = [row(10), {**row(20), "name": "step-000020-r1", "time": 20.0}, {**row(15), "time": 30.0}]
    plan = retention.plan(rows, VaultConfig(keep_last=1), "step-000015", None)
    assert kept(plan)["step-000015"] == (retention.RESUME, "one of the 1 newest")
    assert {v.name for v in plan.doomed} == {"step-000010", "step-000020-r1"}


def test_best_by_any_metric() -> None:
    rows = [
        row(10, train_loss=2.0, metrics={"my-suite": 0.4}),
        row(20, train_loss=1.0, metrics={"my-suite": 0.3}),
    ]
    assert retention.best(rows, "train_loss")["step"] == 20  # type: ignore[index]
    assert retention.best(rows, "my-suite")["step"] == 10  # type: ignore[index]
    assert retention.best(rows, "sy") is None


def test_a_loot_carries_its_suite_scores_to_the_game() -> None:
    from engine.store.commands import loot_info

    info = loot_info({**row(10), "metrics": {"my-suite": 0.4, "capitals": 1}})
    assert info.metrics == (("capitals", 1.0), ("my-suite", 0.4))
    assert loot_info(row(20)).metrics == ()


def test_the_loot_that_ended_a_campaign_phase_is_kept_even_over_budget() -> None:
    rows = [row(10, "phase"), row(20), row(30), row(40, "phase"), row(50)]
    plan = retention.plan(rows, VaultConfig(keep_last=1), "step-000050", budget_bytes=150)
    assert kept(plan)["step-000010"] == (retention.PHASE_END,)
    assert kept(plan)["step-000040"] == (retention.PHASE_END,)
    assert {v.name for v in plan.doomed} == {"step-000020", "step-000030"}
    assert plan.over_budget  # protected loot alone weigh more than the budget: said, not deleted
