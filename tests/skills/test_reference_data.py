"""The reference system's frozen BIN eval sets import and score: every stored solution is
accepted, corrupted ones score lower. Skips when ../shared/seed-data is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skills.registry import get_skill
from tests.conftest import ROOT, SEED_DATA
from tui.cli.skills import reference_problems

pytestmark = pytest.mark.skipif(
    not SEED_DATA.is_dir(), reason="../shared/seed-data is not beside the project"
)


def swap_bits(text: str) -> str:
    return text.replace("①", "x").replace("⓪", "①").replace("x", "⓪")


@pytest.mark.parametrize("level", range(1, 31))
def test_bin_level_files_score_all_stored_solutions(level: int) -> None:
    skill, rows = reference_problems(SEED_DATA / "bin" / f"level_{level:02d}.json")
    assert skill.id == "bin" and rows
    for problem, solution in rows:
        assert skill.score(problem, solution) == 1.0, solution
        assert problem.level == level


def test_bin_level_files_corrupted_score_lower() -> None:
    skill = get_skill("bin")
    lower = total = 0
    for path in sorted((SEED_DATA / "bin").glob("level_*.json")):
        for problem, solution in reference_problems(path)[1]:
            key = json.loads(problem.key)
            corrupted = solution.replace(" = ", " = " + key["one"], 1)  # an extra leading 1
            total += 1
            lower += skill.score(problem, corrupted) < 1.0
    assert lower == total


@pytest.mark.parametrize("name", ["val_binary_easy_100", "val_binary_medium_100", "val_binary_hard_100"])
def test_bin_chat_rows_score_all_stored_answers(name: str) -> None:
    skill, rows = reference_problems(SEED_DATA / "binary" / f"{name}.jsonl")
    assert len(rows) == 100
    assert all(skill.score(p, s) == 1.0 for p, s in rows)
    corrupted = [skill.score(p, swap_bits(s)) for p, s in rows if "①" in s.split("=", 1)[-1]]
    assert corrupted and sum(corrupted) / len(corrupted) < 0.5


def test_eval_import_and_score_from_the_shell(tmp_path: Path) -> None:
    realm = [sys.executable, "-m", "tui.cli"]
    done = subprocess.run(
        [
            *realm,
            "eval",
            "import",
            str(SEED_DATA / "bin" / "level_09.json"),
            "--saves",
            str(tmp_path),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(done.stdout)
    assert summary["problems"] == summary["accepted"] == 5
    saved = Path(summary["saved_to"])
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    rows = [{"skill": "bin", "problem": r, "response": r["answer"]} for r in records]
    rows += [{"skill": "bin", "problem": r, "response": "no idea"} for r in records]
    reference = json.loads((SEED_DATA / "bin" / "level_09.json").read_text())["problems"][0]
    rows.append({"skill": "bin", "problem": reference, "response": reference["expected"]})
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scored = subprocess.run([*realm, "skills", "score", str(answers), "--json"], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    lines = [json.loads(x) for x in scored.stdout.splitlines()]
    assert [x["score"] for x in lines[:-1]] == [1.0] * 5 + [0.0] * 5 + [1.0]
    assert lines[-1]["mean"] == pytest.approx(6 / 11)


def test_sy_reference_puzzles_score_all_stored_solutions() -> None:
    skill = get_skill("sy")
    total = 0
    for path in sorted((SEED_DATA / "sy").glob("*.jsonl")):
        if not path.stat().st_size:
            continue
        found, rows = reference_problems(path)
        assert found.id == "sy"
        for line, (problem, solution) in zip(path.read_text().splitlines(), rows, strict=True):
            record = json.loads(line)
            assert skill.score(problem, solution) == 1.0, (path.name, record["output_variant"])
            assert skill.score(problem, record["solution_text"]) == 1.0, (path.name, record["output_variant"])
            total += 1
    assert total == 400


def test_sy_reference_corrupted_solutions_score_lower() -> None:
    skill, rows = reference_problems(SEED_DATA / "sy" / "level_3.jsonl")
    for problem, solution in rows:
        words = json.loads(problem.key)["words"]
        broken = solution.replace(words[0].upper(), words[0].upper()[::-1], 1)
        assert skill.score(problem, broken) < 1.0
