"""The quest queue on disk and the content checks, without an engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.quests.checks import check_rows, degenerate, leaks
from engine.quests.format import QuestRejected, read_quest
from engine.quests.queue import QuestError, QuestQueue
from skills.registry import get_skill


def chat(prompt: str, answer: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def queue(tmp_path: Path) -> QuestQueue:
    q = QuestQueue(tmp_path / "hero")
    q.create()
    return q


def test_rows_that_cannot_train_are_counted_out_on_arrival(queue: QuestQueue, tmp_path: Path) -> None:
    """`realm quest add` counts the rows that will train: an empty answer (in any format:
    one empty row does not refuse the file) and an exact duplicate are dropped on arrival
    and named by line; the engine's later checks drop the same rows with the same notices."""
    from engine.protocol.messages import AddQuest
    from engine.quests.commands import carry_out

    rows = [chat("a", "b"), chat("a", "b"), {"instruction": "c", "output": ""}, {"text": " "}, chat("d", "e")]
    src = write_rows(tmp_path / "mixed.jsonl", rows)
    message, info = carry_out(queue, AddQuest(str(src)))
    dropped = (
        "dropped 1 row, an exact duplicate of an earlier row: line 2",
        "dropped 2 rows, an empty answer: line 3, 4",
    )
    notices = ("converted 1 Alpaca row to chat_sft_v1", *dropped)
    assert info.rows == 2 and info.notices == notices
    assert message == f"mixed.jsonl queued (normal, 2 rows) ({'; '.join(notices)})"
    parsed = read_quest(queue.path_of(info))
    report = check_rows(parsed.rows, parsed.lines, lambda r: 10, 256)
    assert tuple(report.notices()) == dropped and len(report.kept) == info.rows


def test_priority_order_then_first_in_first_out(queue: QuestQueue, tmp_path: Path) -> None:
    order = [("low1", "low"), ("norm1", "normal"), ("high1", "high"), ("norm2", "normal"), ("high2", "high")]
    for name, priority in order:
        src = write_rows(tmp_path / f"{name}.jsonl", [chat("hi", f"hello {name}")])
        queue.admit(src, move=False, priority=priority)
    names = [q.name for q in queue.all()]
    assert names == ["high1.jsonl", "high2.jsonl", "norm1.jsonl", "norm2.jsonl", "low1.jsonl"]
    taken = []
    while (nxt := queue.next_queued()) is not None:
        taken.append(nxt.name)
        queue.finish(queue.start(nxt))
    assert taken == names
    assert all(q.state == "done" for q in queue.all())


def test_add_copies_atomically_and_keeps_the_users_file(queue: QuestQueue, tmp_path: Path) -> None:
    src = write_rows(tmp_path / "mine.jsonl", [chat(q, "b") for q in "axy"])
    info, _ = queue.admit(src, move=False, epochs=2, checks="deep")
    assert src.exists() and (queue.queue("normal") / "mine.jsonl").read_bytes() == src.read_bytes()
    assert (info.rows, info.epochs, info.checks, info.state) == (3, 2, "deep", "queued")
    other = write_rows(tmp_path / "elsewhere" / "mine.jsonl", [chat("c", "d")])
    again, _ = queue.admit(other, move=False)
    assert again.name == "mine-2.jsonl"  # never overwrites a quest with the same name
    assert not list(queue.queue("normal").glob(".tmp-*"))


def test_header_row_sets_epochs_checks_priority(queue: QuestQueue, tmp_path: Path) -> None:
    src = tmp_path / "h.jsonl"
    src.write_text(
        json.dumps({"quest": {"epochs": 3, "priority": "high", "checks": "deep"}})
        + "\n"
        + json.dumps(chat("a", "b"))
        + "\n"
    )
    info, quest = queue.admit(src, move=True)
    assert (info.epochs, info.priority, info.checks, info.rows) == (3, "high", "deep", 1)
    assert quest.lines == [2] and not src.exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"quest": {"epochs": 0}}) + "\n" + json.dumps(chat("a", "b")) + "\n")
    with pytest.raises(QuestRejected, match=r"line 1 .*epochs must be 1\.\.100"):
        queue.admit(bad, move=True)


def test_a_refused_inbox_file_goes_to_failed_with_its_reason(queue: QuestQueue) -> None:
    bad = queue.inbox / "broken.jsonl"
    bad.write_text(json.dumps(chat("a", "b")) + "\n" + '{"messages": [\n')
    with pytest.raises(QuestRejected, match="line 2"):
        queue.admit(bad, move=True)
    assert not bad.exists()
    assert (queue.failed / "broken.jsonl").exists()  # kept, never deleted
    assert "line 2: invalid JSON" in (queue.failed / "broken.jsonl.reason.txt").read_text()
    [info] = queue.all()
    assert info.state == "failed" and "line 2" in info.reason


def test_a_dangling_link_and_a_fifo_are_refused_and_listed(queue: QuestQueue, tmp_path: Path) -> None:
    (queue.inbox / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(queue.inbox / "pipe.jsonl")
    for name, said in (("gone.jsonl", "cannot read gone.jsonl"), ("pipe.jsonl", "not a regular file")):
        with pytest.raises(QuestRejected, match=said):
            queue.admit(queue.inbox / name, move=True)
    assert {(q.name, q.state) for q in queue.all()} == {("gone.jsonl", "failed"), ("pipe.jsonl", "failed")}
    for meta in queue.failed.glob(".*.quest.json"):
        meta.unlink()  # records lost: listed again at the next start, and the pipe is never read
    _moved, said_again = queue.recover()
    assert len(said_again) == 2 and {q.name for q in queue.all()} == {"gone.jsonl", "pipe.jsonl"}


def test_cancel_retry_priority(queue: QuestQueue, tmp_path: Path) -> None:
    queue.admit(write_rows(tmp_path / "q.jsonl", [chat("a", "b")]), move=False)
    moved = queue.set_priority("q", "high")
    assert moved.priority == "high" and (queue.queue("high") / "q.jsonl").exists()
    cancelled = queue.cancel_queued("q.jsonl")
    assert cancelled.state == "failed" and "cancelled" in cancelled.reason
    assert (queue.failed / "q.jsonl").exists()
    with pytest.raises(QuestError, match="only queued"):
        queue.cancel_queued("q")
    retried, _ = queue.retry("q")
    assert retried.state == "queued" and retried.priority == "high" and not retried.reason
    assert not (queue.failed / "q.jsonl.reason.txt").exists()
    with pytest.raises(QuestError, match="no quest named"):
        queue.retry("nope")


def test_retry_reads_the_fixed_file_and_refuses_a_still_broken_one(queue: QuestQueue) -> None:
    bad = queue.inbox / "fixme.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    with pytest.raises(QuestRejected):
        queue.admit(bad, move=True)
    with pytest.raises(QuestRejected, match="line 1"):
        queue.retry("fixme")
    assert queue.get("fixme").state == "failed"
    write_rows(queue.failed / "fixme.jsonl", [{"prompt": "x", "completion": "y"}])
    info, _ = queue.retry("fixme")
    assert info.state == "queued" and info.rows == 1


def test_recover_returns_processing_to_its_queue_and_adopts_hand_placed_files(
    queue: QuestQueue, tmp_path: Path
) -> None:
    info, _ = queue.admit(write_rows(tmp_path / "p.jsonl", [chat("a", "b")]), move=False, priority="low")
    queue.start(info)
    write_rows(queue.queue("high") / "by-hand.jsonl", [chat("c", "d")])
    moved, problems = queue.recover()
    assert problems == []
    assert [m.name for m in moved] == ["p.jsonl"]
    states = {q.name: (q.state, q.priority) for q in queue.all()}
    assert states == {"p.jsonl": ("queued", "low"), "by-hand.jsonl": ("queued", "high")}


@pytest.mark.parametrize("damage", ["deleted", "not JSON", "a list"])
def test_quests_whose_record_is_damaged_are_listed_again_not_hidden(
    queue: QuestQueue, tmp_path: Path, damage: str
) -> None:
    def admitted(name: str) -> object:
        info, _ = queue.admit(write_rows(tmp_path / name, [chat(name, "ok")]), move=False)
        return queue.start(info)

    done = queue.finish(admitted("done.jsonl"))  # type: ignore[arg-type]
    failed = queue.fail(admitted("failed.jsonl"), "line 1: something")  # type: ignore[arg-type]
    active = admitted("active.jsonl")
    for info in (done, failed, active):
        meta = queue.path_of(info).with_name(f".{info.name}.quest.json")  # type: ignore[attr-defined]
        if damage == "deleted":
            meta.unlink()
        else:
            meta.write_text('{"name": "x", ' if damage == "not JSON" else "[1]")
    assert queue.all() == []  # every record unreadable: nothing listed yet
    _moved, said = queue.recover()
    states = {q.name: q.state for q in queue.all()}
    assert states == {"done.jsonl": "done", "failed.jsonl": "failed", "active.jsonl": "queued"}
    assert len(said) == 3 and any("queued again from its start" in line for line in said)
    assert all("unknown" in q.notices[0] for q in queue.all() if q.state != "queued")
    kept = sorted(p.name for p in queue.root.rglob(".*.quest.json.corrupt-*"))
    assert len(kept) == (0 if damage == "deleted" else 3)  # a damaged record is kept aside
    with pytest.raises(QuestRejected, match=r"same content as quest done\.jsonl"):
        queue.admit(write_rows(tmp_path / "again.jsonl", [chat("done.jsonl", "ok")]), move=False)


# ---------------------------------------------------------------------- content checks


def rows_and_lines(rows: list[dict[str, object]]) -> tuple[list[dict[str, object]], list[int]]:
    return rows, list(range(1, len(rows) + 1))


def test_standard_checks_drop_duplicates_long_and_degenerate_rows_by_line() -> None:
    rows, lines = rows_and_lines(
        [
            chat("q1", "a1"),
            chat("q1", "a1"),  # duplicate of line 1
            chat("q2", " ".join(f"word{i}" for i in range(120))),  # too long for max_tokens below
            chat("q3", "la " * 60),  # degenerate repetition
            chat("q4", "a4"),
        ]
    )
    report = check_rows(rows, lines, lambda r: len(json.dumps(r)) // 4, max_tokens=64)
    assert report.kept == [0, 4]
    notes = " | ".join(report.notices())
    assert "duplicate" in notes and "line 2" in notes
    longest = len(json.dumps(rows[2])) // 4
    assert (
        f"longer than the hero's max length of 64 tokens (the longest is {longest}; " in notes
        and "line 3" in notes
    )
    assert f"`realm config set train.seq_len {longest}` would hold them" in notes
    assert "degenerate" in notes and "line 4" in notes


def test_a_row_the_models_chat_template_refuses_is_dropped_not_the_quest(hatchling_dir: Path) -> None:
    """Gemma's template raises on a system turn, Mistral's on turns out of order: those rows
    are dropped by line with the template's reason; the quest trains on the rest (the whole
    quest failed before)."""
    from transformers import AutoTokenizer

    from engine.train.chat import ChatRenderer

    tokenizer = AutoTokenizer.from_pretrained(hatchling_dir)
    tokenizer.chat_template = (
        "{%- for m in messages %}{%- if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{%- endif %}{{- m['role'] + ': ' + m['content'] + eos_token }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- 'assistant: ' }}{%- endif %}"
    )
    renderer = ChatRenderer(tokenizer)
    with_system = {"messages": [{"role": "system", "content": "be nice"}, *chat("hi", "yo")["messages"]]}  # type: ignore[index]
    rows, lines = rows_and_lines([chat("q1", "a1"), with_system, chat("q2", "a2")])
    report = check_rows(rows, lines, lambda r: len(renderer.render_row(r)), 256)
    assert report.kept == [0, 2]
    assert report.notices() == [
        "dropped 1 row, the model's chat template cannot render it (TemplateError: System role not supported): line 2"
    ]


def test_eval_contamination_is_dropped_and_leakage_found_when_deep() -> None:
    bin_skill = get_skill("bin")
    planted = bin_skill.eval_set(1)[0]
    rows, lines = rows_and_lines(
        [
            chat("What is 2+2?", "4"),
            chat(planted.prompt, "anything"),  # an eval problem: must never train
            chat("The secret word is swordfish. What is the secret word?", "swordfish"),  # leaks
            chat("Name a colour.", "blue"),
        ]
    )
    prompts = {p.prompt for p in bin_skill.eval_set(1)}
    standard = check_rows(rows, lines, lambda r: 10, 256, prompts)
    assert standard.kept == [0, 2, 3]
    assert any("contamination" in n and "line 2" in n for n in standard.notices())
    deep = check_rows(rows, lines, lambda r: 10, 256, prompts, deep=True)
    assert deep.kept == [0, 3]
    assert any("leakage" in n and "line 3" in n for n in deep.notices())


def test_leak_and_repetition_rules() -> None:
    assert leaks(chat("the answer is 42, say it", "42"))
    assert not leaks(chat("what is 6 times 7", "42"))
    assert not leaks(chat("x 142 y", "42"))  # a short answer must match as a whole word
    assert degenerate("ha" * 40)
    assert degenerate("I am fine. " * 12)
    assert not degenerate("The quick brown fox jumps over the lazy dog, then naps in the sun.")
    assert not degenerate("ok")


def test_a_quest_with_nothing_left_fails_naming_the_line(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "dup.jsonl", [chat("q", "loop " * 50)])
    quest = read_quest(path)
    with pytest.raises(QuestRejected, match="no row can train; line 1: degenerate"):
        check_rows(quest.rows, quest.lines, lambda r: 10, 256)
