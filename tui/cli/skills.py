"""`realm skills …` and `realm eval import`: look at what DIO trains on, check answers,
and bring reference eval sets in. Pure Python (skills/), no torch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.protocol.names import printable
from skills.base import Problem, Skill
from skills.registry import all_skills, get_skill, skill_problems
from tui.cli.common import add_hero_args, at_least, save_from


def add_parsers(sub: Any) -> None:
    skills = sub.add_parser(
        "skills",
        help="list skills; sample problems; score answers",
        description="Without a subcommand: list every skill (built-in and from $REALM_SKILLS) "
        "with its levels and the hero's progress.",
    )
    add_hero_args(skills)
    skills.set_defaults(run=cmd_skills)
    ssub = skills.add_subparsers(dest="skills_command", metavar="SUBCOMMAND")
    sample = ssub.add_parser(
        "sample",
        help="print generated problems",
        description="Print problems of a skill level, exactly as DIO sees them in training "
        "(split train) or in its static eval set (split eval).",
    )
    sample.add_argument("skill", help="skill id, e.g. bin")
    sample.add_argument("--level", type=at_least(1), default=1, help="level (default 1)")
    sample.add_argument("--count", type=at_least(1), default=5, help="how many (default 5)")
    sample.add_argument("--start", type=at_least(0), default=0, help="first problem index (default 0)")
    sample.add_argument("--split", choices=("train", "eval"), default="train")
    sample.add_argument("--json", action="store_true", help="one JSON object per line")
    score = ssub.add_parser(
        "score",
        help="score model answers with the skills' verifiers",
        description='Read JSON lines {"skill": ID, "problem": <a row of `realm skills sample '
        '--json`, or a reference eval record>, "response": "<model output>"} and print each '
        "row's score (0..1) and the mean.",
    )
    score.add_argument("file", type=Path, help="JSON lines file ('-' for standard input)")
    score.add_argument("--json", action="store_true", help="print JSON lines and a summary object")

    evals = sub.add_parser("eval", help="eval sets: import reference files")
    evals.set_defaults(run=cmd_eval)
    esub = evals.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    imp = esub.add_parser(
        "import",
        help="turn a reference eval file into a static eval set",
        description="Read a reference eval file (BIN bin/level_NN.json, BIN chat rows "
        "binary/*.jsonl, SY sy/level_N.jsonl), check every stored solution with the skill's verifier, and save the "
        "problems as an eval set in the hero's save folder (evals/).",
    )
    add_hero_args(imp)
    imp.add_argument("path", type=Path, help="the reference file")
    imp.add_argument("--json", action="store_true", help="print one JSON summary object")


def cmd_skills(args: argparse.Namespace) -> int:
    if args.skills_command == "sample":
        return cmd_sample(args)
    if args.skills_command == "score":
        return cmd_score(args)
    return print_skill_list(save_from(args).read_status())


def cmd_eval(args: argparse.Namespace) -> int:
    if args.eval_command != "import":
        raise SystemExit("realm: usage: realm eval import PATH (see realm eval import --help)")
    return cmd_eval_import(args, save_from(args).root)


def print_skill_list(hero_status: dict[str, Any]) -> int:
    progress = hero_status.get("skills", {})
    print(f"{'':2} {'id':5} {'name':12} {'levels':>6}  {'gate':>5}  {'evals':>5}  DIO")
    for skill in all_skills():
        spec = skill.spec
        track = progress.get(skill.id)
        where = f"level {track['level']}" if track else "not training"
        print(
            f"{spec.icon:2} {skill.id:5} {skill.name:12} {skill.max_level:>6}  "
            f"{spec.threshold:>5.0%}  {spec.eval_size:>5}  {where}"
        )
    for left_out in skill_problems():  # a user's skill that could not load, and why
        print(printable(f"✘  {left_out}"), file=sys.stderr)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    skill = _skill(args.skill)
    if not 1 <= args.level <= skill.max_level:
        raise SystemExit(f"realm: {skill.id} has levels 1..{skill.max_level}")
    for index in range(args.start, args.start + args.count):
        problem = skill.generate(args.level, index, split=args.split)
        if args.json:
            print(json.dumps(problem.record(), ensure_ascii=False))
        else:
            print(f"--- {skill.id} level {args.level} #{index} ({args.split})")
            print(problem.prompt)
            print(f">>> {problem.answer}")
    return 0


SCORE_KEYS = ("skill", "problem", "response")
SCORE_ROW = '{"skill": ID, "problem": <a row of `realm skills sample --json`>, "response": "<model output>"}'


def cmd_score(args: argparse.Namespace) -> int:
    lines = json_lines(sys.stdin.read()) if str(args.file) == "-" else _read_lines(args.file)
    scores: list[float] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"realm: {args.file} line {number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SystemExit(f"{where}: invalid JSON ({exc})") from None
        missing = [k for k in SCORE_KEYS if k not in row] if isinstance(row, dict) else list(SCORE_KEYS)
        if missing:
            raise SystemExit(f"{where}: no {', '.join(repr(k) for k in missing)}; each row is {SCORE_ROW}")
        try:
            skill = _skill(row["skill"])
            problem = skill.problem_from_record(row["problem"])
            value = skill.score(problem, str(row["response"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(
                f"{where}: not a problem of {row['skill']!r} ({type(exc).__name__}: {exc})"
            ) from None
        scores.append(value)
        if args.json:
            print(json.dumps({"line": number, "skill": skill.id, "score": value}))
        else:
            print(f"line {number}: {skill.id} {value:.3f}")
    mean = sum(scores) / len(scores) if scores else 0.0
    if args.json:
        print(json.dumps({"rows": len(scores), "mean": mean}))
    else:
        print(f"mean {mean:.3f} over {len(scores)} rows")
    return 0


def reference_problems(path: Path) -> tuple[Skill, list[tuple[Problem, str]]]:
    """(skill, [(problem, stored solution)]) from a reference eval file."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and "problems" in data and "bits" in data:
            skill = get_skill("bin")
            level = int(data.get("level", 0))
            rows = [
                (skill.problem_from_record({**r, "level": level}), r["expected"]) for r in data["problems"]
            ]
            return skill, rows
        raise ValueError(f"{path}: not a BIN level file (no 'problems'/'bits')")
    records = [json.loads(line) for line in json_lines(text) if line.strip()]
    if not records:
        raise ValueError(f"{path}: empty")
    first = records[0]
    if "user_prompt" in first and "assistant_response" in first:
        skill = get_skill("bin")
        return skill, [(skill.problem_from_record(r), r["assistant_response"]) for r in records]
    if "syllable_bank" in first or "puzzle_id" in first:
        skill = get_skill("sy")
        return skill, [(skill.problem_from_record(r), _solution_text(r)) for r in records]
    raise ValueError(f"{path}: unrecognised rows (keys: {sorted(first)})")


def cmd_eval_import(args: argparse.Namespace, hero_root: Path) -> int:
    try:
        skill, rows = reference_problems(args.path)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"realm: cannot import {args.path}: {exc}") from None
    accepted = sum(1 for problem, solution in rows if skill.score(problem, solution) >= 1.0)
    target = hero_root / "evals" / f"{skill.id}-{args.path.stem}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".jsonl.tmp")
    tmp.write_text(
        "".join(json.dumps(p.record(), ensure_ascii=False) + "\n" for p, _ in rows), encoding="utf-8"
    )
    tmp.replace(target)
    # ... and as an eval suite, so `realm evals run` and the schedule use it
    suite = hero_root / "suites" / f"{skill.id}-{args.path.stem}.jsonl"
    suite.parent.mkdir(parents=True, exist_ok=True)
    rows_text = "".join(
        json.dumps({"id": f"{skill.id}-{i}", "skill": skill.id, "problem": p.record()}, ensure_ascii=False)
        + "\n"
        for i, (p, _) in enumerate(rows)
    )
    tmp = suite.with_suffix(".jsonl.tmp")
    tmp.write_text(rows_text, encoding="utf-8")
    tmp.replace(suite)
    summary = {
        "skill": skill.id,
        "problems": len(rows),
        "accepted": accepted,
        "saved_to": str(target),
        "suite": suite.stem,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{skill.name}: {len(rows)} problems; the verifier accepts {accepted} of the {len(rows)} stored solutions"
        )
        print(f"saved as an eval set: {target}")
        print(f"and as the eval suite {suite.stem}: realm evals run {suite.stem}")
    return 0 if accepted == len(rows) else 1


def _solution_text(record: dict[str, Any]) -> str:
    solution = record.get("solution", "")
    return solution if isinstance(solution, str) else json.dumps(solution)


def _skill(skill_id: str) -> Skill:
    try:
        return get_skill(skill_id)
    except KeyError as exc:
        raise SystemExit(f"realm: {exc.args[0]}") from None


def json_lines(text: str) -> list[str]:
    """JSON lines end at \n (or \r\n) only: splitlines() would also cut at U+2028 and
    U+0085, which JSON allows inside a string (a model's answer may hold one)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _read_lines(path: Path) -> list[str]:
    try:
        return json_lines(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise SystemExit(f"realm: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SystemExit(
            f"realm: {path} line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})"
        ) from None
