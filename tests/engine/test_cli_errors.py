"""Clear errors instead of tracebacks, and a hero's slot handled with care: bad model
folders refused before a slot exists, `realm heroes`, unknown heroes, unwritable save
roots, override flags that are not saved, private save folders and shareable exports."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model.export import main as export_main
from engine.protocol.savedir import SaveDir
from engine.run import main as engine_main
from tests.conftest import ROOT, make_hero, realm_here, run_worker


@pytest.mark.parametrize(
    ("remove", "said"),
    [("weights", "no weights in it"), ("tokenizer", "no tokenizer in it"), ("config", "no config.json")],
)
def test_a_bad_model_folder_is_refused_before_a_slot_exists(
    tmp_path: Path, hatchling_dir: Path, remove: str, said: str
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(hatchling_dir, folder)
    gone = {"weights": ["model.safetensors"], "tokenizer": ["tokenizer.json"], "config": ["config.json"]}
    for name in gone[remove]:
        (folder / name).unlink()
    saves = tmp_path / "saves"
    refused = realm_here("train", "--saves", str(saves), "--hero", "new", "--model", str(folder))
    assert refused.returncode != 0 and said in refused.stderr
    assert not (saves / "new").exists()
    # the engine itself refuses too, before making the slot
    code = engine_main.main(["--save-dir", str(saves / "other"), "--model", str(folder)])
    assert code == engine_main.EXIT_BAD_CONFIG and not (saves / "other").exists()


def test_realm_heroes_lists_and_deletes_slots(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, name="ada")
    run_worker(save, config, 3)
    make_hero(tmp_path, hatchling_dir, name="bo")
    shutil.copytree(hatchling_dir, tmp_path / "exported")  # a model folder among the heroes is not one
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")  # a damaged hero still is
    listed = realm_here("heroes", "--saves", str(tmp_path), "--json")
    rows = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert set(rows) == {"ada", "bo", "broken"}
    assert rows["ada"]["step"] == 3 and rows["ada"]["state"] == "stopped" and rows["ada"]["size_bytes"] > 0
    assert rows["ada"]["model"] == "hatchling" and rows["ada"]["mode"] == "full"
    human = realm_here("heroes", "--saves", str(tmp_path)).stdout
    assert "ada" in human and "MB" in human
    asks = realm_here("heroes", "delete", "bo", "--saves", str(tmp_path))  # nobody to ask here
    assert asks.returncode == 1 and "--yes" in asks.stderr and (tmp_path / "bo").exists()
    outside = realm_here("heroes", "delete", "../bo", "--yes", "--saves", str(tmp_path / "ada"))
    assert outside.returncode == 1 and "not a hero's name" in outside.stderr and (tmp_path / "bo").exists()
    gone = realm_here("heroes", "delete", "bo", "--yes", "--saves", str(tmp_path))
    assert gone.returncode == 0 and not (tmp_path / "bo").exists()
    nobody = realm_here("heroes", "delete", "nobody", "--yes", "--saves", str(tmp_path))
    assert nobody.returncode == 1 and "no hero 'nobody'" in nobody.stderr


def test_a_training_hero_is_not_deleted(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_hero(tmp_path, hatchling_dir, name="busy")
    monkeypatch.setattr(SaveDir, "engine_pid", lambda self: 4242)
    refused = realm_here("heroes", "delete", "busy", "--yes", "--saves", str(tmp_path))
    assert refused.returncode == 1 and "is training" in refused.stderr and (tmp_path / "busy").exists()


def test_unknown_heroes_and_unwritable_roots_say_so_in_one_line(tmp_path: Path) -> None:
    for command in ("status", "stop"):
        out = realm_here(command, "--hero", "nobody", "--saves", str(tmp_path))
        assert out.returncode != 0 and f"no hero 'nobody' in {tmp_path}" in out.stderr
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    out = realm_here("train", "--saves", str(not_a_folder))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr and "Not a directory" in out.stderr


def test_a_closed_pipe_ends_quietly_as_other_tools_do() -> None:
    # more output than a pipe holds, to a reader that leaves after one line
    done = subprocess.run(
        f"{sys.executable} -m tui.cli skills sample bin --count 20000 | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""  # `git log | head`: no traceback, no word


def test_override_flags_apply_to_one_run_only(tmp_path: Path) -> None:
    save = SaveDir(tmp_path / "dio")
    args = engine_main.build_parser().parse_args(
        ["--save-dir", str(save.root), "--max-steps", "3", "--threads", "1"]
    )
    hero, run = engine_main.resolve_config(save, args)
    assert run.game.max_steps == 3 and run.train.threads == 1
    assert hero.game.max_steps == 0 and hero.train.threads == 0  # what config.json keeps


def test_save_folders_are_private_and_exports_are_not(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 2)
    assert stat.S_IMODE(save.root.stat().st_mode) == 0o700
    os.umask(old := os.umask(0o077))  # even under a strict umask, an export is shareable
    try:
        os.umask(0o077)
        assert export_main(["--save-dir", str(save.root), str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    exported = tmp_path / "out"
    assert stat.S_IMODE(exported.stat().st_mode) == 0o755
    assert {stat.S_IMODE(f.stat().st_mode) for f in exported.iterdir()} == {0o644}
    # a destination that cannot be a folder (under a file): one line, nothing left behind
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SystemExit, match=r"cannot write .*a-file/model: Not a directory"):
        export_main(["--save-dir", str(save.root), str(blocker / "model")])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bad_inputs_are_one_line_before_anything_is_made(tmp_path: Path, hatchling_dir: Path) -> None:
    """An override the engine would refuse is refused before a slot exists; a file that is
    not UTF-8 and an empty question are one line each, not a traceback."""
    saves = tmp_path / "saves"
    for flags, said in (
        (["--seq-len", "-5"], "seq_len must be >= 0"),
        (["--threads", "-1"], "threads must be"),
        (["--fsdp"], "add --gpus 2 or more"),
        (["--gpus", "2", "--fsdp", "--mode", "lora"], "trains in mode lora"),
    ):
        refused = realm_here("train", "--saves", str(saves), *flags)
        assert refused.returncode == 1 and said in refused.stderr and "Traceback" not in refused.stderr
    assert not saves.exists()
    alone = engine_main.main(["--save-dir", str(tmp_path / "engine"), "--fsdp"])  # not under torchrun
    assert alone == engine_main.EXIT_BAD_CONFIG
    junk = tmp_path / "answers.jsonl"
    junk.write_bytes(b'{"skill": "bin"}\n\xff\xfe\n')
    scored = realm_here("skills", "score", str(junk))
    assert scored.returncode == 1 and "answers.jsonl line 2: not UTF-8 text" in scored.stderr
    junk.write_text('{"skill": "bin", "answer": "x"}\n')
    scored = realm_here("skills", "score", str(junk))
    assert (
        scored.returncode == 1
        and "answers.jsonl line 1: no 'problem', 'response'; each row is" in scored.stderr
    )
    make_hero(tmp_path, hatchling_dir, name="dio")
    fetched = realm_here("quest", "add", "https://huggingface.co/datasets/a/b", "--saves", str(tmp_path))
    assert fetched.returncode == 1 and "is an address" in fetched.stderr
    asked = realm_here("oracle", "ask", "  ", "--saves", str(tmp_path))
    assert asked.returncode == 2 and "the prompt is empty" in asked.stderr
    # counts and lengths out of range: argparse's usage line naming the flag, before any work
    for args, said in (
        (["skills", "sample", "bin", "--count", "-1"], "argument --count: -1 is below 1"),
        (["skills", "sample", "bin", "--start", "-5"], "argument --start: -5 is below 0"),
        (["bench", "--steps", "0"], "argument --steps: 0 is below 1"),
        (["bench", "--soak", "x"], "argument --soak: 'x' is not a whole number"),
        (["stop", "--timeout", "-1"], "argument --timeout: -1 is below 0"),
    ):
        refused = realm_here(*args)
        assert refused.returncode == 2 and said in refused.stderr, (args, refused.stderr)
    port = realm_here("serve", "--port", "99999", "--saves", str(tmp_path))
    assert port.returncode == 1 and "--port 99999 must be 1..65535" in port.stderr


def test_play_without_a_terminal_says_what_to_run_instead(tmp_path: Path) -> None:
    """Redirected to a file (or under nohup), the game drew escape codes into it forever."""
    done = subprocess.run(
        [sys.executable, "-m", "tui.cli", "play", "--saves", str(tmp_path / "saves")],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "realm train" in done.stderr and "--web" in done.stderr, done.stderr
    assert done.stdout == "" and not (tmp_path / "saves").exists()  # nothing started, nothing made
    # Output on a terminal but the keys piped in (`echo | realm play`): no key would reach it.
    import pty

    leader, follower = pty.openpty()
    try:
        piped = subprocess.run(
            [sys.executable, "-m", "tui.cli", "play", "--saves", str(tmp_path / "saves")],
            cwd=ROOT,
            stdout=follower,
            stderr=subprocess.PIPE,
            input=b"",
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert piped.returncode == 1 and b"reads its keys there" in piped.stderr, piped.stderr
    assert not (tmp_path / "saves").exists()
