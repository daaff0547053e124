"""Eval suites: each scorer with a row it accepts and one it rejects, a file refused
with its line number, and the paired comparison on crafted cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.evals import scorers
from engine.evals.compare import paired, sign_test
from engine.evals.suites import SuiteError, read_suite
from skills.registry import get_skill


@pytest.mark.parametrize(
    ("row", "right", "wrong"),
    [
        ({"expected": "Paris"}, " paris ", "Lyon"),
        ({"regex": r"\b4[02]\b"}, "It is 42.", "It is 44."),
        ({"number": 3.5, "tolerance": 0.01}, "about 3.505 metres", "3.6"),
        ({"number": 1234.5}, "1,234.5", "no idea"),
    ],
)
def test_each_scorer_accepts_and_rejects(row: dict[str, object], right: str, wrong: str) -> None:
    assert scorers.score(row, right) == 1.0
    assert scorers.score(row, wrong) == 0.0


def test_keywords_score_the_share_found_case_insensitively() -> None:
    row = {"keywords": ["Gradient", "descent", "loss"]}
    assert scorers.score(row, "gradient DESCENT lowers it") == pytest.approx(2 / 3)
    assert scorers.score(row, "nothing") == 0.0


def test_a_skill_row_is_scored_by_the_skills_verifier() -> None:
    skill = get_skill("bin")
    problem = skill.generate(1, 7, "eval")
    row = {"skill": "bin", "problem": problem.record()}
    assert scorers.score(row, problem.answer) == 1.0
    assert scorers.score(row, "①①①①①①") < 1.0


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"question": "hi"}, "no way to score it"),
        ({"question": "hi", "expected": "a", "regex": "a"}, "more than one scorer"),
        ({"question": "hi", "keywords": []}, "non-empty list"),
        ({"question": "hi", "regex": "("}, "does not compile"),
        ({"question": "hi", "number": "seven"}, "must be a number"),
        ({"question": "hi", "skill": "bin", "problem": {"nonsense": 1}}, "not a problem of skill"),
    ],
)
def test_rows_that_cannot_be_scored_are_refused_with_their_line(
    tmp_path: Path, row: dict[str, object], why: str
) -> None:
    path = tmp_path / "mine.jsonl"
    good = {"id": "a", "question": "2 + 2?", "number": 4}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(SuiteError, match=f"line 3: .*{why}"):
        read_suite(path)


def test_a_suite_reads_questions_messages_and_skill_problems(tmp_path: Path) -> None:
    problem = get_skill("bin").generate(1, 3, "eval")
    rows = [
        {
            "id": "cap",
            "question": "Capital of France?",
            "expected": "Paris",
            "category": "geo",
            "difficulty": "easy",
        },
        {"id": "chat", "messages": [{"role": "user", "content": "Say hi"}], "keywords": ["hi"]},
        {"id": "bin", "skill": "bin", "problem": problem.record()},
    ]
    path = tmp_path / "my-suite.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = read_suite(path)
    assert suite.name == "my-suite" and [q.scorer for q in suite.questions] == ["exact", "keywords", "skill"]
    assert suite.questions[0].messages == ({"role": "user", "content": "Capital of France?"},)
    assert suite.questions[2].messages[-1]["content"] == problem.messages()[-1]["content"]
    assert suite.categories() == ["geo"]
    path.write_text(path.read_text() + json.dumps(rows[0]) + "\n")
    with pytest.raises(SuiteError, match="line 4: id 'cap' is used twice"):
        read_suite(path)


def test_question_answer_files_and_json_arrays_are_suites(tmp_path: Path) -> None:
    """prompt/question + answer, as many data sets ship them; a JSON array names lines too."""
    path = tmp_path / "qa.json"
    path.write_text(
        '[\n  {"prompt": "Capital of France?", "answer": "Paris"},\n'
        '  {"id": "n", "question": "2 + 2?", "answer": 4},\n'
        '  {"question": "Say hi", "answer": "hi", "keywords": ["hi", "hello"]}\n]\n'
    )
    suite = read_suite(path)
    assert [q.scorer for q in suite.questions] == ["exact", "number", "keywords"]
    assert suite.questions[0].messages == ({"role": "user", "content": "Capital of France?"},)
    assert scorers.score(suite.questions[0].row, " paris ") == 1.0
    assert scorers.score(suite.questions[1].row, "It is 4.") == 1.0
    assert [q.id for q in suite.questions] == ["q2", "n", "q4"]  # ids default to the line
    path.write_text('[{"prompt": "a", "answer": "b"},\n {"prompt": "c"}]')
    with pytest.raises(SuiteError, match="line 2: no way to score it"):
        read_suite(path)


def test_quest_shaped_files_and_compressed_ones_are_suites(tmp_path: Path) -> None:
    """The prompt/answer pairs a quest reads (so part of a quest file can be held out as a
    suite), gzip compressed as data sets ship; its name loses every extension."""
    import gzip

    rows = [
        {"instruction": "Capital of", "input": "France", "output": "Paris"},
        {"input": "ping", "output": "pong"},
        {"prompt": "2 + 2 =", "completion": "4"},
        {"query": "3 + 3?", "response": "6", "type": "GSM"},
        {"question": "Say hi", "answer": "hi"},
    ]
    path = tmp_path / "held-out.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    suite = read_suite(path)
    assert suite.name == "held-out"
    assert [q.messages[-1]["content"] for q in suite.questions] == [
        "Capital of\n\nFrance",
        "ping",
        "2 + 2 =",
        "3 + 3?",
        "Say hi",
    ]
    assert [q.row.get("expected") for q in suite.questions] == ["Paris", "pong", "4", "6", "hi"]
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer\nCapital?,Paris\n")
    with pytest.raises(SuiteError, match=r"line 1: .* CSV is not read: eval suites are JSON lines"):
        read_suite(csv)


def test_chat_rows_held_out_of_a_quest_ask_their_turns_and_expect_the_last_answer(tmp_path: Path) -> None:
    """A quest's chat rows (OpenAI, ShareGPT, TRL's prompt/completion turns) as a suite:
    the turns before the last answer are asked, the answer is expected. They were refused
    ("the last message must be the user's")."""
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                      {"role": "assistant", "content": "Paris"}]},
        {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
        {"prompt": [{"role": "user", "content": "Say hi"}], "completion": [{"role": "assistant", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "Name a colour"}], "keywords": ["blue", "red"]},
    ]  # fmt: skip
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = read_suite(path)
    assert [q.scorer for q in suite.questions] == ["exact", "exact", "exact", "keywords"]
    assert suite.questions[0].messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    )
    assert suite.questions[1].messages == ({"role": "user", "content": "2+2?"},)
    assert [q.row.get("expected") for q in suite.questions[:3]] == ["Paris", "4", "hi"]
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(SuiteError, match="line 1: no way to score it"):
        read_suite(path)


@pytest.mark.parametrize(
    "row",
    [
        {
            "question": "Capital of France?",
            "choices": ["Lyon", "Paris", "Nice", "Lille"],
            "answer": 1,
        },  # MMLU
        {
            "question": "Capital of France?",
            "options": ["Lyon", "Paris", "Nice", "Lille"],
            "answer": "B",
        },  # MMLU-Pro
        {
            "question": "Capital of France?",
            "choices": {"text": ["Lyon", "Paris", "Nice", "Lille"], "label": ["A", "B", "C", "D"]},
            "answerKey": "B",
        },  # ARC
        {"question": "Capital of France?", "choices": ["Lyon", "Paris", "Nice", "Lille"], "answer": "Paris"},
        {"question": "Capital of France?", "choices": ["Lyon", "Paris", "Nice", "Lille"], "expected": "B"},
    ],
    ids=["MMLU", "MMLU-Pro", "ARC", "the answer's text", "our own expected field"],
)
def test_multiple_choice_asks_the_lettered_choices_and_scores_the_letter(
    tmp_path: Path, row: dict[str, object]
) -> None:
    """Read as free text, MMLU's answer index 1 was the expected answer "1", and the
    choices were never shown."""
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps(row) + "\n")
    [question] = read_suite(path).questions
    assert question.scorer == "choice"
    assert question.messages[-1]["content"] == (
        "Capital of France?\n\nA. Lyon\nB. Paris\nC. Nice\nD. Lille\n\nAnswer with A, B, C or D."
    )
    for right in ("B", " B.", "(B) Paris", "B: Paris", "The answer is B", "answer: (B)", "Paris", "paris."):
        assert scorers.score(question.row, right) == 1.0, right
    for wrong in ("C", "A cat would say Paris", "Lyon", "", "BA", "1"):
        assert scorers.score(question.row, wrong) == 0.0, wrong


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "an index \\(0 to 1\\)"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "2 to 26 texts"),
        ({"choices": ["a", "b"], "answer": 0}, 'no "question" to ask'),
        ({"question": "q", "expected": " "}, '"expected" is empty'),
    ],
    ids=["an index past the choices", "one choice", "no question", "an empty expected answer"],
)
def test_rows_that_cannot_be_asked_or_scored_right_are_refused(
    tmp_path: Path, row: dict[str, object], why: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(SuiteError, match=f"line 1: .*{why}"):
        read_suite(path)


def test_the_sign_test_and_the_paired_verdicts() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(6, 0) == pytest.approx(2 / 64)
    assert sign_test(3, 3) == 1.0
    ids = [f"q{i}" for i in range(20)]
    a = [0.0] * 10 + [1.0] * 10
    b = [1.0] * 10 + [1.0] * 10  # B fixes 10, breaks none
    result = paired(ids, a, b)
    assert len(result.fixed) == 10 and not result.broken and len(result.both_right) == 10
    assert result.p_value == pytest.approx(2 / 1024) and result.verdict.startswith("B is better")
    small = paired(ids[:4], [0, 0, 1, 1], [1, 1, 1, 1])
    assert "too few questions differ (2)" in small.verdict
    even = paired(ids, [1.0] * 6 + [0.0] * 6 + [1.0] * 8, [0.0] * 6 + [1.0] * 6 + [1.0] * 8)
    assert even.verdict.startswith("no real difference")
