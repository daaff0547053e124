"""Skills: determinism, disjoint train/eval seeds, verifiers that accept every stored
answer and score corrupted ones lower (property tests), monotone level tables."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skills.base import Problem, strip_thinking
from skills.bin import ONE, ZERO, Bin, from_bits, to_bits
from skills.registry import all_skills, get_skill
from skills.spec import SkillSpec

SKILLS = {s.id: s for s in all_skills()}


def test_registry_finds_builtin_skills() -> None:
    assert {"bin", "ari", "sy"} <= set(SKILLS)
    assert get_skill("BIN").name == "Binary"
    with pytest.raises(KeyError, match="unknown skill"):
        get_skill("nope")


@pytest.mark.parametrize("skill_id", sorted(SKILLS))
def test_same_seed_same_problem_and_disjoint_splits(skill_id: str) -> None:
    skill = SKILLS[skill_id]
    for level in (1, skill.max_level):
        assert skill.generate(level, 7) == skill.generate(level, 7)
        train = {skill.generate(level, i, "train").key for i in range(40)}
        evals = skill.eval_set(level, 40)
        assert evals == skill.eval_set(level, 40)  # static
        if level == skill.max_level:  # a big problem space: the splits do not collide
            assert not train & {p.key for p in evals}


@settings(max_examples=60, deadline=None)
@given(skill_id=st.sampled_from(sorted(SKILLS)), level=st.integers(1, 30), index=st.integers(0, 10**6))
def test_stored_answer_scores_one_and_corruption_scores_less(skill_id: str, level: int, index: int) -> None:
    skill = SKILLS[skill_id]
    level = min(level, skill.max_level)
    problem = skill.generate(level, index)
    assert skill.score(problem, problem.answer) == 1.0
    assert skill.score(problem, f"<think>\nhmm\n</think>\n\n{problem.answer}") == 1.0
    assert skill.score(problem, f"Sure! {problem.answer}") == 1.0
    assert skill.score(problem, "") < 1.0
    assert skill.score(problem, corrupt(problem)) < 1.0


def corrupt(problem: Problem) -> str:
    """Change the final answer's first character to another digit/bit (for SY: misspell
    the first word)."""
    if problem.skill == "sy":
        data = json.loads(problem.answer)
        first = data["solutions"][0]
        if "answer" in first:
            first["answer"] += "Q"
        else:  # the compact answer: a tile that is not in the bank
            first["syllables"] = [*first["syllables"], "q"]
        return json.dumps(data)
    line = problem.answer.split("\n", 1)[0]
    head, _, value = line.rpartition("= ") if "= " in line else ("", "", line)
    swap = {"0": "1", "1": "2", "2": "3", "3": "4", "4": "5", "5": "6", "6": "7", "7": "8", "8": "9", "9": "1",
            ZERO: ONE, ONE: ZERO, "t": "f", "f": "t"}  # fmt: skip
    key = json.loads(problem.key)
    for a, b in ((key.get("zero"), key.get("one")), (key.get("one"), key.get("zero"))):
        if a and value.startswith(a):
            return f"{head}= {b}{value[len(a) :]}"
    return f"{head}{'= ' if head else ''}{swap.get(value[0], '0')}{value[1:]}"


@pytest.mark.parametrize("skill_id", sorted(SKILLS))
def test_difficulty_never_decreases(skill_id: str) -> None:
    spec = SKILLS[skill_id].spec
    rows = [spec.params(level) for level in range(1, spec.max_level + 1)]
    for before, after in itertools.pairwise(rows):
        for name, value in before.items():
            if isinstance(value, int | float):
                assert after[name] >= value, (name, before, after)
            elif isinstance(value, list) and all(isinstance(v, int) for v in value) and name != "styles":
                assert all(b >= a for a, b in zip(value, after[name], strict=True)), (name, before, after)
            elif isinstance(value, list | str) and name == "ops":
                assert set(value) <= set(after[name]), (name, before, after)
        if "styles" in before:  # the share of brief answers only shrinks
            assert after["styles"][0] / sum(after["styles"]) <= before["styles"][0] / sum(before["styles"])


def test_bin_levels_follow_the_reference_widths() -> None:
    spec = SKILLS["bin"].spec
    assert [spec.params(lvl)["bits"] for lvl in (1, 7, 8, 15, 30)] == [2, 8, 9, 16, 32]
    assert spec.params(7)["symbols"] == 0 and spec.params(8)["symbols"] > 0


def test_bin_symbol_language_declares_its_symbols() -> None:
    skill = SKILLS["bin"]
    declared = [p for p in (skill.generate(12, i) for i in range(30)) if "Symbol Key" in p.prompt]
    assert declared
    for problem in declared:
        key = json.loads(problem.key)
        assert f"{key['zero']} = 0" in problem.prompt and f"{key['one']} = 1" in problem.prompt


def test_bin_partial_credit_for_close_binary_answers() -> None:
    skill = SKILLS["bin"]
    key = {"op": "add", "args": [5, 3], "zero": ZERO, "one": ONE, "style": "brief"}
    problem = Problem("bin", 3, 0, "train", "Compute: add(①⓪①, ①①)", "", key=json.dumps(key))
    assert skill.score(problem, "add(①⓪①, ①①) = ①⓪⓪⓪") == 1.0
    assert 0 < skill.score(problem, "add(①⓪①, ①①) = ①⓪⓪①") < 1.0  # 3 of 4 bits right
    assert skill.score(problem, "add(①⓪①, ①①) = ①①") == 0.0


def test_bits_round_trip() -> None:
    for value in (0, 1, 2, 5, 1023):
        assert from_bits(to_bits(value)) == value
    assert from_bits("①x⓪") is None
    assert strip_thinking("<think>a</think>b") == "b"


def test_spec_validation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.yaml"
    path.write_text("id: x\nname: X\nicon: x\ncolour: red\ndescription: d\nmax_level: 2\n"
                    "module: skills.bin:Bin\nlevels:\n  1: {bits: 2}\n")  # fmt: skip
    with pytest.raises(ValueError, match="lacks levels"):
        SkillSpec.load(path)
    assert isinstance(SKILLS["bin"], Bin)


def test_user_skill_folder_is_discovered(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "echo_skill.py").write_text(
        "from skills.base import Problem, Skill, problem_rng\n"
        "class Echo(Skill):\n"
        "    def generate(self, level, index, split='train'):\n"
        "        word = problem_rng(self.id, level, index, split).choice(['a', 'b'])\n"
        "        return Problem(self.id, level, index, split, f'say {word}', word, key=word)\n"
        "    def score(self, problem, response):\n"
        "        return float(response.strip() == problem.answer)\n"
    )
    (tmp_path / "echo.yaml").write_text(
        "id: echo\nname: Echo\nicon: E\ncolour: blue\ndescription: repeat\nmax_level: 1\n"
        "module: echo_skill:Echo\nlevels:\n  1: {}\n"
    )
    monkeypatch.setenv("REALM_SKILLS", str(tmp_path))
    echo = get_skill("echo")
    problem = echo.generate(1, 0)
    assert echo.score(problem, problem.answer) == 1.0


def test_a_broken_user_skill_is_left_out_with_why_and_the_others_stay(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from skills.registry import all_skills, skill_problems

    (tmp_path / "fine_skill.py").write_text(
        "from skills.base import Problem, Skill\n"
        "class Fine(Skill):\n"
        "    def generate(self, level, index, split='train'):\n"
        "        return Problem(self.id, level, index, split, 'say a', 'a')\n"
        "    def score(self, problem, response):\n"
        "        return float(response.strip() == problem.answer)\n"
        "class Harsh(Fine):\n"
        "    def score(self, problem, response):\n"
        "        return 0.0\n"
    )
    # the least a skill needs: icon, colour and description have defaults
    head = "name: N\nmax_level: 1\nlevels:\n  1: {}\n"
    files = {
        "fine.yaml": f"id: fine\nmodule: fine_skill:Fine\n{head}",
        "harsh.yaml": f"id: harsh\nmodule: fine_skill:Harsh\n{head}",
        "gone.yaml": f"id: gone\nmodule: no_such_module:Gone\n{head}",
        "typo.yaml": "id: [typo\n",
        "shape.yaml": "id: shape\nname: S\nmax_level: two\nmodule: fine_skill:Fine\nlevels: [1, 2]\n",
        "lvl.yaml": "id: lvl\nname: L\nmax_level: 1\nmodule: fine_skill:Fine\nlevels:\n  1: 5\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("REALM_SKILLS", str(tmp_path))
    ids = [s.id for s in all_skills()]
    assert "fine" in ids and {"bin", "sy"} <= set(ids)
    assert get_skill("fine").spec.icon  # a default
    why = {x.path.name: x.reason for x in skill_problems()}
    assert set(why) == set(files) - {"fine.yaml"}
    assert "scores 0.0, not 1" in why["harsh.yaml"]
    assert "ModuleNotFoundError" in why["gone.yaml"]
    assert "not a readable YAML file (line 2)" in why["typo.yaml"]
    assert "max_level must be a whole number" in why["shape.yaml"]
    assert "level 1's parameters must be a mapping" in why["lvl.yaml"]
    with pytest.raises(KeyError, match=r"gone\.yaml left out: ModuleNotFoundError"):
        get_skill("gone")


def sy_problem(clues: list[dict[str, object]], bank: list[str], words: list[str]) -> Problem:
    key = {"clues": clues, "bank": bank, "words": words, "decoys": []}
    return Problem("sy", 1, 0, "eval", "", "", key=json.dumps(key))


def test_sy_accepts_any_assignment_that_satisfies_the_puzzle() -> None:
    sy = SKILLS["sy"]
    problem = sy_problem([{"slots": 2}, {"slots": 2}], ["al", "so", "to", "day"], ["also", "today"])
    assert sy.score(problem, "1. ALSO\n2. TODAY") == 1.0
    assert sy.score(problem, "1. TODAY\n2. ALSO") == 1.0  # not the stored order, still right
    assert sy.score(problem, "1. ALSO\n2. ALSO") == 0.5  # a tile cannot be used twice
    assert sy.score(problem, "1. ALSO\n2. TODAX") == 0.5  # partial credit per word


def test_sy_clues_constrain_answers() -> None:
    sy = SKILLS["sy"]
    clue = {"slots": 2, "letters": 4, "first": "a"}
    problem = sy_problem([clue, {"slots": 2}], ["al", "so", "to", "day"], ["also", "today"])
    assert sy.score(problem, "1. TODAY\n2. ALSO") == 0.5  # TODAY does not start with A; ALSO fits 2
    json_answer = {"solutions": [{"ans_num": 2, "syllables": ["to", "day"], "answer": "TODAY"},
                                 {"ans_num": 1, "syllables": ["al", "so"], "answer": "ALSO"}]}  # fmt: skip
    assert sy.score(problem, json.dumps(json_answer)) == 1.0  # ans_num decides, not order


def test_sy_levels_grow_harder() -> None:
    sy = SKILLS["sy"]
    easy, hard = sy.generate(1, 0), sy.generate(50, 0)
    assert len(json.loads(easy.key)["clues"]) < len(json.loads(hard.key)["clues"])
    assert "letters" in easy.prompt and "letters" not in hard.prompt  # hints fade


def test_sy_low_levels_answer_with_tiles_and_the_contract_stays_accepted() -> None:
    sy = SKILLS["sy"]
    low, high = sy.generate(1, 3), sy.generate(21, 3)
    compact = json.loads(low.answer)
    assert all(set(s) == {"ans_num", "syllables"} for s in compact["solutions"])  # no capitals to spell
    assert "inventory_check" not in compact and sy.score(low, low.answer) == 1.0
    contract = json.loads(high.answer)
    assert all("answer" in s for s in contract["solutions"]) and "inventory_check" in contract
    assert sy.score(high, high.answer) == 1.0
    # the same puzzle answered in the reference contract scores the same
    words = json.loads(low.key)["words"]
    as_contract = {
        "solutions": [dict(s, answer=w.upper()) for s, w in zip(compact["solutions"], words, strict=True)]
    }
    assert sy.score(low, json.dumps(as_contract)) == 1.0
    swapped = {"solutions": [dict(s, syllables=s["syllables"][::-1]) for s in compact["solutions"]]}
    assert sy.score(low, json.dumps(swapped)) < 1.0  # tiles in the wrong order spell no word


def test_sy_tiles_are_the_same_tokens_in_the_prompt_and_the_answer(hatchling_dir) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hatchling_dir)
    problem = SKILLS["sy"].generate(1, 11)
    prompt, answer = tok(problem.prompt).input_ids, tok(problem.answer).input_ids
    for tile in json.loads(problem.key)["bank"]:
        ids = [t for t in tok(f' "{tile}"').input_ids if tok.decode([t]).strip(' "[],') != ""]
        assert ids, tile
        assert any(prompt[i : i + len(ids)] == ids for i in range(len(prompt))), tile
        assert any(answer[i : i + len(ids)] == ids for i in range(len(answer))), tile


def test_sy_credits_the_whole_solutions_of_a_broken_json_answer() -> None:
    sy = SKILLS["sy"]
    problem = sy.generate(21, 5)
    answer = problem.answer
    cut = answer[: answer.index('{"ans_num": 3')] + '{"ans_num": 3, "sylla'
    assert sy.score(problem, cut) == pytest.approx(2 / len(json.loads(problem.key)["words"]))
    low = sy.generate(1, 5)
    assert sy.score(low, low.answer[:-2]) == 1.0  # both words whole, the closing brackets lost
