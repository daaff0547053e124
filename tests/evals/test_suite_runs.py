"""Eval suites end to end: added, run offline and by the engine (on demand and at each
automatic loot), kept per loot in the ledger, compared, and a Vault metric."""

from __future__ import annotations

import json
from pathlib import Path

from engine.protocol import messages as p
from engine.store.ledger import Ledger
from tests.conftest import make_hero, realm_here, run_engine, run_worker

QUESTIONS = [
    {"id": "one", "question": "Compute: increment(⓪)", "regex": "①", "category": "inc", "difficulty": "easy"},
    {"id": "two", "question": "Say yes", "keywords": ["yes"], "category": "talk"},
    {"id": "three", "question": "2 + 2?", "number": 4},
]


def write_suite(folder: Path, name: str = "mine", rows: list[dict[str, object]] | None = None) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows or QUESTIONS))
    return path


def test_offline_add_run_list_compare_and_best_by_suite(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path / "saves", hatchling_dir)
    run_worker(save, config, max_steps=20)  # loot at 10 and 20
    saves = str(save.root.parent)
    bad = write_suite(tmp_path, "bad", [QUESTIONS[0], {"id": "x", "question": "no scorer"}])
    refused = realm_here("evals", "add", str(bad), "--saves", saves)
    assert refused.returncode == 1 and "line 2: no way to score it" in refused.stderr
    added = realm_here("evals", "add", str(write_suite(tmp_path)), "--saves", saves)
    assert added.returncode == 0 and "suite mine added: 3 questions" in added.stdout, added.stderr
    assert (save.root / "suites" / "mine.jsonl").is_file()

    ran = realm_here("evals", "run", "mine", "--loot", "10", "--loot", "20", "--json", "--saves", saves)
    assert ran.returncode == 0, ran.stderr
    results = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [len(r["questions"]) for r in results] == [3, 3]
    assert set(results[0]["by_category"]) == {"inc", "talk"} and results[0]["by_difficulty"] == {
        "easy": results[0]["questions"][0]["score"]
    }
    assert all(isinstance(q["answer"], str) for q in results[0]["questions"])
    loot = {r["name"]: r for r in Ledger(save.ledger, read_only=True).live_loot()}
    assert loot["step-000010"]["metrics"]["mine"] == results[0]["score"]  # a Vault metric now
    best = realm_here("vault", "best", "--metric", "mine", "--json", "--saves", saves)
    assert best.returncode == 0 and json.loads(best.stdout)["metric"] == "mine"

    listed = json.loads(realm_here("evals", "list", "--json", "--saves", saves).stdout)
    assert listed == [
        {
            "suite": "mine",
            "questions": 3,
            "scores": {"step-000010": results[0]["score"], "step-000020": results[1]["score"]},
        }
    ]
    compared = realm_here(
        "evals", "compare", "mine", "step-000010", "step-000020", "--json", "--saves", saves
    )
    data = json.loads(compared.stdout)
    assert sorted(data["fixed"] + data["broken"] + data["both_right"] + data["both_wrong"]) == [
        "one",
        "three",
        "two",
    ]
    assert "too few questions differ" in data["verdict"]  # 3 questions can never tell
    missing = realm_here("evals", "compare", "mine", "step-000010", "live@5", "--saves", saves)
    assert missing.returncode == 1 and "run it first" in missing.stderr
    # Any model folder, or a Hub id in the local cache: run, never written to the ledger.
    folder = realm_here("evals", "run", "mine", "--model", str(hatchling_dir), "--json", "--saves", saves)
    assert folder.returncode == 0 and len(json.loads(folder.stdout)["questions"]) == 3, folder.stderr
    no_id = realm_here("evals", "run", "mine", "--model", "Org/not-cached-here", "--saves", saves)
    assert no_id.returncode == 1 and "`hf download Org/not-cached-here`" in no_id.stderr, no_id.stderr


def test_the_engine_runs_suites_on_demand_and_at_each_automatic_loot(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, checkpoint_every=4, eval_every=4)
    (save.root / "suites").mkdir()
    write_suite(save.root / "suites")
    driver, worker, thread = run_engine(save, config)
    try:
        driver.hello()
        saved = driver.wait_until(
            lambda e: isinstance(e, p.CheckpointSaved) and e.loot.reason == "auto", 300
        ).loot
        done = driver.wait_until(
            lambda e: isinstance(e, p.TaskUpdated) and e.task.kind == "suite" and e.task.state == "done", 300
        ).task
        assert done.total == 3 and done.result.startswith(f"mine on {saved.name}: ")
        row = next(r for r in worker.ledger.live_loot() if r["name"] == saved.name)
        assert "mine" in row["metrics"]  # the loot's own score
        reply = driver.request(p.RunSuite("mine", saved.name), (p.SuiteReply,), 300)
        assert reply.ok and json.loads(reply.data)["suite"] == "mine"
        unknown = driver.request(p.RunSuite("nope"), (p.SuiteReply,), 60)
        assert not unknown.ok and "no suite 'nope' (suites: mine)" in unknown.message
        live = driver.request(p.RunSuite("mine"), (p.SuiteReply,), 300)
        assert live.ok and " on live@" in live.message
    finally:
        worker.request_stop("test over")
        thread.join(120)


def test_a_skills_sample_line_and_a_reference_import_become_suites(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, _config = make_hero(tmp_path / "saves", hatchling_dir)
    saves = str(save.root.parent)
    sample = realm_here("skills", "sample", "bin", "--level", "1", "--count", "3", "--json")
    path = tmp_path / "sampled.jsonl"
    path.write_text(sample.stdout)
    added = realm_here("evals", "add", str(path), "--saves", saves)
    assert added.returncode == 0 and "3 questions" in added.stdout, added.stderr
    reference = Path(__file__).resolve().parents[3] / "shared" / "seed-data" / "bin" / "level_01.json"
    if reference.is_file():  # the seed data sits beside the checkout (CI has it)
        imported = realm_here("eval", "import", str(reference), "--saves", saves)
        assert "realm evals run bin-level_01" in imported.stdout
        assert (save.root / "suites" / "bin-level_01.jsonl").is_file()
        listed = json.loads(realm_here("evals", "list", "--json", "--saves", saves).stdout)
        assert {s["suite"] for s in listed} == {"bin-level_01", "sampled"} and all(
            "problem" not in s for s in listed
        )
