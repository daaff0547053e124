"""A real watchfiles inbox in a temporary folder: complete files are queued, files being
written are not, and every bad file lands in failed/ with a reason naming the line."""

from __future__ import annotations

import json
import os
import queue as queue_mod
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.quests.inbox import Inbox, IntakeResult, open_for_writing
from engine.quests.queue import QuestQueue
from tests.quests.conftest import BAD, CHAT, chats, lines

ROWS = 40


@pytest.fixture
def inbox(tmp_path: Path):  # type: ignore[no-untyped-def]
    quests = QuestQueue(tmp_path / "hero")
    box = Inbox(quests, stable_seconds=1.0)
    box.start()
    yield box
    box.stop()


def results(box: Inbox, count: int, timeout: float = 30.0) -> list[IntakeResult]:
    out: list[IntakeResult] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        try:
            out.append(box.results.get(timeout=0.2))
        except queue_mod.Empty:
            continue
    return out


def test_a_dropped_file_is_queued(inbox: Inbox) -> None:
    (inbox.quests.inbox / "greet.jsonl").write_text(lines(*chats(ROWS)))
    [result] = results(inbox, 1)
    assert result.info is not None and result.info.rows == ROWS
    assert (inbox.quests.queue("normal") / "greet.jsonl").exists()
    assert not (inbox.quests.inbox / "greet.jsonl").exists()


def test_partial_names_wait_for_the_rename(inbox: Inbox) -> None:
    box = inbox.quests.inbox
    for name in ("data.jsonl.part", ".hidden.jsonl", "data.jsonl.tmp"):
        (box / name).write_text(lines(CHAT))
    assert results(inbox, 1, timeout=3.0) == []  # none taken
    os.replace(box / "data.jsonl.part", box / "data.jsonl")
    [result] = results(inbox, 1)
    assert result.name == "data.jsonl" and result.info is not None
    assert (box / ".hidden.jsonl").exists() and (box / "data.jsonl.tmp").exists()


SLOW_WRITER = """
import sys, time
path, rows, pause, reopen = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
f = open(path, "a")
for i in range(rows):
    line = sys.argv[5].replace("ROW", str(i))  # rows that differ: duplicates are dropped
    f.write(line if i % 2 == 0 else line[: len(line) // 2])  # half a row, then the rest
    if i % 2 == 1:
        f.write(line[len(line) // 2 :])
    f.flush()
    if reopen:
        f.close(); time.sleep(pause); f = open(path, "a")
    else:
        time.sleep(pause)
f.close()
"""


@pytest.mark.parametrize(
    ("pause", "reopen"),
    [(0.3, True), (1.6, False)],
    ids=["reopened every 0.3 s", "held open with pauses longer than the stable window"],
)
def test_a_file_written_slowly_is_not_taken_half_written(inbox: Inbox, pause: float, reopen: bool) -> None:
    path = inbox.quests.inbox / "slow.jsonl"
    rows = 12 if reopen else 4
    row = json.dumps({"prompt": "ROW+1=", "completion": "?"}) + "\n"
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(path), str(rows), str(pause), "1" if reopen else "0", row]
    )
    try:
        [result] = results(inbox, 1, timeout=60)
    finally:
        writer.wait(30)
    assert result.info is not None, result.reason
    assert result.info.rows == rows  # all of it, not the part written so far


def test_open_for_writing_sees_our_own_writer(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with open(path, "w") as f:
        f.write("x")
        assert open_for_writing(path)
    assert not open_for_writing(path)
    with open(path) as f:  # a reader does not hold it back
        assert not open_for_writing(path)


def test_every_bad_file_lands_in_failed_with_its_reason(inbox: Inbox) -> None:
    box = inbox.quests.inbox
    expected = {}
    for i, (case, (data, reason)) in enumerate(sorted(BAD.items())):
        name = f"bad{i}.jsonl"
        (box / name).write_bytes(data.encode() if isinstance(data, str) else data)
        expected[name] = (case, reason)
    (box / "a-folder.jsonl").mkdir()
    expected["a-folder.jsonl"] = ("directory", "is a folder, not a file")
    os.symlink(box / "loop.jsonl", box / "loop.jsonl")
    expected["loop.jsonl"] = ("symlink loop", "cannot read")
    with open(box / "huge.jsonl", "wb") as f:
        f.write(b'{"text": "' + b"a" * 50_000_000 + b'"}\n')
    expected["huge.jsonl"] = ("50 MB line", "line 1: 50,000,012 bytes")
    got = {r.name: r for r in results(inbox, len(expected), timeout=90)}
    assert set(got) == set(expected)
    for name, (case, reason) in expected.items():
        assert got[name].info is None, case
        assert reason in got[name].reason, (case, got[name].reason)
        assert reason in (inbox.quests.failed / f"{name}.reason.txt").read_text(), case
        assert os.path.lexists(inbox.quests.failed / name), case  # the file is kept
    assert not any(os.path.lexists(box / n) for n in expected)


def test_bom_and_crlf_files_are_accepted(inbox: Inbox) -> None:
    box = inbox.quests.inbox
    (box / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + lines(CHAT).encode())
    (box / "crlf.jsonl").write_bytes(lines(*chats(2)).replace("\n", "\r\n").encode())
    got = {r.name: r for r in results(inbox, 2)}
    assert got["bom.jsonl"].info is not None and got["crlf.jsonl"].info is not None
    assert got["crlf.jsonl"].info.rows == 2
