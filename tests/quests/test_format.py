"""Quest intake, deny by default: a catalogue of bad files, each refused with a reason
that names the line; good shapes accepted (BOM, CRLF) and converted with a notice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.quests.format import QuestRejected, read_quest
from engine.quests.queue import read_trainable
from tests.conftest import SEED_DATA
from tests.quests.conftest import BAD, CHAT, lines, write


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, case: str) -> None:
    data, reason = BAD[case]
    with pytest.raises(QuestRejected) as refused:
        read_trainable(write(tmp_path, "quest.jsonl", data))  # what the inbox and `quest add` read with
    assert reason in str(refused.value)


def test_files_joined_with_cat_keep_working_with_a_bom_on_a_later_line(tmp_path: Path) -> None:
    """`cat a.jsonl b.jsonl` where b was saved with a BOM (Notepad): the BOM starts line 2."""
    joined = (
        lines({"prompt": "a", "completion": "b"}).encode() + b"\xef\xbb\xbf" + lines({"text": "c"}).encode()
    )
    assert len(read_quest(write(tmp_path, "joined.jsonl", joined)).rows) == 2


def test_a_50_mb_line_is_refused_without_parsing(tmp_path: Path) -> None:
    huge = '{"text": "' + "x" * 50_000_000 + '"}\n'
    with pytest.raises(QuestRejected, match=r"line 2: 50,000,012 bytes"):
        read_quest(write(tmp_path, "big.jsonl", lines(CHAT) + huge))


def test_a_directory_and_a_symlink_loop_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(QuestRejected, match="is a folder, not a file: drop the files in it"):
        read_quest(folder)
    loop = tmp_path / "loop.jsonl"
    os.symlink(loop, loop)
    with pytest.raises(QuestRejected, match=r"cannot read loop\.jsonl"):
        read_quest(loop)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    text = lines(CHAT, CHAT).replace("\n", "\r\n")
    quest = read_quest(write(tmp_path, "q.jsonl", b"\xef\xbb\xbf" + text.encode()))
    assert len(quest.rows) == 2 and quest.specs["chat_sft_v1"] == 2 and not quest.notices


def test_common_formats_are_converted_with_a_notice(tmp_path: Path) -> None:
    rows = [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
        {"instruction": "Add", "input": "2 and 3", "output": "5"},
        {"prompt": "The sky is", "completion": " blue."},
        {"text": "Once upon a time."},
        {"user_prompt": "Compute: add(①, ①)", "assistant_response": "add(①, ①) = ①⓪"},
    ]
    quest = read_quest(write(tmp_path, "mixed.jsonl", lines(*rows)))
    assert quest.specs == {"chat_sft_v1": 3, "completion_v1": 2}
    assert quest.rows[0]["messages"][1] == {"role": "assistant", "content": "hello"}
    assert quest.rows[1]["messages"][0]["content"] == "Add\n\n2 and 3"
    assert sorted(quest.notices) == [
        "converted 1 Alpaca row to chat_sft_v1",
        "converted 1 BIN chat row to chat_sft_v1",
        "converted 1 ShareGPT row to chat_sft_v1",
        "converted 1 prompt/completion row to completion_v1",
    ]


def test_more_shapes_from_the_wild_are_converted(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Name a colour", "context": "Of the sky.", "response": "Blue", "category": "qa"},
        {"prompt": "Capital of France?", "response": "Paris"},
        {"question": "1+1?", "answer": "2"},
        {"input": "ping", "output": "pong"},
        {
            "prompt": [{"role": "user", "content": "hi"}],
            "completion": [{"role": "assistant", "content": "yo"}],
        },
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
            ]
        },
        {"conversations": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "v"}]},
    ]
    quest = read_quest(write(tmp_path, "wild.jsonl", lines(*rows)))
    assert quest.specs == {"chat_sft_v1": 7}
    chats = [row["messages"] for row in quest.rows]
    assert chats[0] == [
        {"role": "user", "content": "Name a colour\n\nOf the sky."},
        {"role": "assistant", "content": "Blue"},
    ]
    assert [chat[-1]["content"] for chat in chats] == ["Blue", "Paris", "2", "pong", "yo", "c", "v"]
    assert chats[5][0] == {"role": "user", "content": "a\nb"}
    assert sorted(quest.notices) == [
        "converted 1 Dolly row to chat_sft_v1",
        "converted 1 ShareGPT row to chat_sft_v1",
        "converted 1 chat prompt/completion row to chat_sft_v1",
        "converted 1 input/output row to chat_sft_v1",
        "converted 1 prompt/response row to chat_sft_v1",
        "converted 1 question/answer row to chat_sft_v1",
    ]


def test_gemini_rows_other_role_names_and_metamath_pairs_are_read(tmp_path: Path) -> None:
    """Vertex AI's Gemini tuning rows (user/model turns of text parts, a system
    instruction), OpenAI's developer turn, a model turn (Gemma's name), MetaMathQA's
    query/response; an assistant's reasoning kept beside its content is said not to train."""
    rows = [
        {
            "systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Capital "}, {"text": "of Italy?"}]},
                {"role": "model", "parts": [{"text": "Rome"}]},
            ],
        },
        {"messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "u"}, {"role": "model", "content": "m"}]},
        {"query": "2+3?", "response": "5", "type": "GSM_Rephrased"},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "hmm"}]},
    ]  # fmt: skip
    quest = read_quest(write(tmp_path, "wild.jsonl", lines(*rows)))
    chats = [row["messages"] for row in quest.rows]
    assert chats[0] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome"},
    ]
    assert [m["role"] for m in chats[1]] == ["system", "user", "assistant"]
    assert chats[2] == [{"role": "user", "content": "2+3?"}, {"role": "assistant", "content": "5"}]
    assert chats[3][-1] == {"role": "assistant", "content": "a"}
    assert sorted(quest.notices) == [
        "1 row with an assistant's reasoning beside its content (reasoning_content/reasoning/thinking): "
        "only the content trains; to train the reasoning, put it in the content, in the think tags "
        "your model's chat template uses",
        "converted 1 Gemini row to chat_sft_v1",
        "converted 1 query/response row to chat_sft_v1",
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
            "line 1: contents[0].parts[0] is not a text part (only text can train)",
        ),
        ({"contents": []}, "line 1: 'contents' must be a non-empty list"),
        ({"contents": [{"role": "user", "parts": [{"text": "q"}]}]}, "line 1: no assistant turn"),
        ({"contents": [{"role": "critic", "parts": [{"text": "q"}]}]}, "line 1: contents[0] needs a role"),
    ],
    ids=["an image part", "no contents", "no model turn", "an unknown role"],
)
def test_gemini_rows_that_cannot_train_are_refused(
    tmp_path: Path, row: dict[str, object], reason: str
) -> None:
    with pytest.raises(QuestRejected) as refused:
        read_quest(write(tmp_path, "gemini.jsonl", lines(row)))
    assert reason in str(refused.value)


def test_line_separators_inside_strings_do_not_cut_a_row(tmp_path: Path) -> None:
    """U+2028, U+2029 and U+0085 may stand unescaped in a JSON string; only \\n ends a line."""
    text = "".join(
        json.dumps({"prompt": f"a{sep}b", "completion": f"c{sep}d"}, ensure_ascii=False) + "\n"
        for sep in ("\u2028", "\u2029", "\x85")
    )
    quest = read_quest(write(tmp_path, "web.jsonl", text))
    assert quest.lines == [1, 2, 3] and quest.rows[0]["prompt"] == "a\u2028b"


def test_a_json_array_file_is_read_with_line_numbers(tmp_path: Path) -> None:
    """Alpaca's own data ships as one JSON array: each row keeps the line it starts on."""
    text = (
        ' [\n  {"quest": {"epochs": 2}},\n  {"instruction": "Add", "input": "2 and 3",\n'
        '   "output": "5"},\n\n  {"instruction": "Say hi", "output": "hi"}\n]\n'
    )
    quest = read_quest(write(tmp_path, "alpaca.json", text))
    assert quest.settings == {"epochs": 2}
    assert quest.lines == [3, 6]
    assert [row["messages"][1]["content"] for row in quest.rows] == ["5", "hi"]
    assert quest.notices == ["converted 2 Alpaca rows to chat_sft_v1"]
    assert read_quest(write(tmp_path, "crlf.json", text.replace("\n", "\r\n"))).lines == [3, 6]
    with pytest.raises(QuestRejected, match="empty"):
        read_quest(write(tmp_path, "none.json", " [ ] "))


def test_compressed_files_are_read_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bz2
    import gzip
    import lzma

    from engine.quests import rows as quest_rows

    text = lines(CHAT, CHAT).encode()
    for name, packed in (("q.jsonl.gz", gzip.compress(text)), ("q.jsonl.bz2", bz2.compress(text)),
                         ("q.jsonl.xz", lzma.compress(text)), ("q.data", gzip.compress(text))):  # fmt: skip
        assert len(read_quest(write(tmp_path, name, packed)).rows) == 2, name  # known by its bytes
    with pytest.raises(QuestRejected, match="a compressed file that cannot be read"):
        read_quest(write(tmp_path, "cut.jsonl.gz", gzip.compress(text)[:-12]))
    monkeypatch.setattr(quest_rows, "MAX_FILE_BYTES", 1_000)
    bomb = gzip.compress(lines(*[CHAT] * 100).encode())  # small on disk, larger unpacked
    assert len(bomb) < 1_000
    with pytest.raises(QuestRejected, match="expands past 1,000 bytes"):
        read_quest(write(tmp_path, "bomb.jsonl.gz", bomb))


def test_a_table_export_is_refused_with_the_line_that_converts_it(tmp_path: Path) -> None:
    for name, data in (
        ("rows.csv", b"prompt,completion\nhi,yo\n"),
        ("rows.parquet", b"PAR1\x15\x04\x00\x00\xff"),
    ):
        with pytest.raises(
            QuestRejected, match=r"^line 1: .* is not read: quests are JSON lines .*lines=True"
        ):
            read_quest(write(tmp_path, name, data))
    with pytest.raises(QuestRejected) as plain:  # other names: the reason alone
        read_quest(write(tmp_path, "rows.jsonl", b"prompt,completion\n"))
    assert "not read" not in str(plain.value)


@pytest.mark.skipif(not SEED_DATA.is_dir(), reason="../shared/seed-data is not beside the project")
def test_reference_files_are_valid_quests() -> None:
    binary = read_quest(SEED_DATA / "binary" / "val_binary_easy_100.jsonl")
    assert binary.specs == {"chat_sft_v1": 100}
    syllo = read_quest(SEED_DATA / "sy" / "level_1.jsonl")
    assert syllo.specs == {"syllo_v1": 20}
