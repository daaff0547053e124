"""Any local Hugging Face folder is a hero: the CLI refuses what cannot work before a
slot is made, and the engine trains the folder in place (no copy into the save)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir
from tests.conftest import FAST_GAME, FAST_TRAIN, realm, realm_here, run_worker


def test_train_any_local_model_folder(tmp_path: Path, hatchling_dir: Path) -> None:
    saves = str(tmp_path / "saves")
    missing = realm_here("train", "--saves", saves, "--hero", "other", "--model", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no such folder" in missing.stderr
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    refused = realm_here("train", "--saves", saves, "--hero", "other", "--model", str(not_a_model))
    assert refused.returncode != 0 and "no config.json" in refused.stderr
    # The session's hatchling folder stands in for any local Hugging Face model.
    save = SaveDir(tmp_path / "saves" / "own")
    save.create()
    config = HeroConfig(name="own", model=str(hatchling_dir.resolve()), train=FAST_TRAIN, game=FAST_GAME)
    save.config.write_text(config.to_json())
    run_worker(save, config, 3)
    status = json.loads(realm_here("status", "--json", "--saves", saves, "--hero", "own").stdout)
    assert status["state"] == "stopped" and status["step"] == 3 and status["last_loot_step"] == 3
    assert status["model"] == str(hatchling_dir.resolve())
    assert not save.base_model.exists()  # trained from the given folder
    other = tmp_path / "other-model"
    shutil.copytree(hatchling_dir, other)
    switch = realm_here("train", "--saves", saves, "--hero", "own", "--model", str(other))
    assert switch.returncode != 0 and "already trains" in switch.stderr


def test_a_hub_id_names_its_snapshot_in_the_local_cache(
    tmp_path: Path, hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model Org/name`, as a practitioner types it: the snapshot `hf download` left in
    the Hugging Face cache trains; an id not there is refused saying how to fetch it
    (nothing is downloaded), before a hero slot is made."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    saves = str(tmp_path / "saves")
    absent = realm_here("train", "--saves", saves, "--hero", "cached", "--model", "Org/tiny-model")
    assert absent.returncode != 0 and "`hf download Org/tiny-model`" in absent.stderr, absent.stderr
    assert not (tmp_path / "saves" / "cached").exists()

    repo = tmp_path / "hub" / "models--Org--tiny-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("c0ffee\n")
    snapshot = repo / "snapshots" / "c0ffee"
    shutil.copytree(hatchling_dir, snapshot)
    trained = realm(
        "train", "--saves", saves, "--hero", "cached", "--model", "Org/tiny-model", "--max-steps", "1"
    )
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "saves" / "cached" / "config.json").read_text())
    assert config["model"] == str(snapshot)  # the folder itself: the hero never depends on the id
    status = json.loads(realm_here("status", "--json", "--saves", saves, "--hero", "cached").stdout)
    assert status["model"] == "Org/tiny-model"  # shown by its id, not by a commit hash
    heroes = [
        json.loads(line) for line in realm_here("heroes", "--json", "--saves", saves).stdout.splitlines()
    ]
    assert [h["model"] for h in heroes if h["name"] == "cached"] == ["Org/tiny-model"]
    again = realm(
        "train", "--saves", saves, "--hero", "cached", "--model", "Org/tiny-model", "--max-steps", "2"
    )
    assert again.returncode == 0, again.stderr  # the same id is the same model, resumed


def without_chat_template(hatchling_dir: Path, folder: Path) -> Path:
    """The hatchling as a base model ships: no chat template anywhere in the folder."""
    shutil.copytree(hatchling_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_path = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer_config.pop("chat_template", None)
    config_path.write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return folder


def test_a_base_model_without_a_chat_template_trains_in_chatml_turns_ending_in_eos(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """Most pre-trained checkpoints ship no chat template (the engine failed at start with
    a traceback): the hero gets ChatML turns that end in the model's end-of-sequence token,
    the log book says so, and the loot keeps the template for the Oracle, serve and export."""
    from transformers import AutoTokenizer

    from engine.model.tokenizer import BASE_CHAT_TEMPLATE
    from engine.train.chat import ChatRenderer

    base = without_chat_template(hatchling_dir, tmp_path / "base-model")
    assert AutoTokenizer.from_pretrained(base).chat_template is None
    save = SaveDir(tmp_path / "saves" / "base")
    save.create()
    config = HeroConfig(name="base", model=str(base), train=FAST_TRAIN, game=FAST_GAME)
    save.config.write_text(config.to_json())
    worker = run_worker(save, config, 3)
    tokenizer = worker.hero.tokenizer
    assert tokenizer.chat_template == BASE_CHAT_TEMPLATE
    rendered = ChatRenderer(tokenizer).render(
        [{"role": "user", "content": "1+1="}, {"role": "assistant", "content": "2"}]
    )
    learned = [t for t, trains in zip(rendered.input_ids, rendered.trainable, strict=True) if trains]
    assert tokenizer.decode(learned) == "2" + tokenizer.eos_token  # the answer, then where it ends
    assert "no chat template of its own" in (save.root / "events.jsonl").read_text(encoding="utf-8")
    loot = save.root / "checkpoints" / "step-000003"
    assert AutoTokenizer.from_pretrained(loot).chat_template == BASE_CHAT_TEMPLATE


def test_a_tokenizer_without_a_template_or_an_end_token_is_refused(hatchling_dir: Path) -> None:
    from transformers import AutoTokenizer

    from engine.model.tokenizer import NoChatFormat, give_chat_format

    tokenizer = AutoTokenizer.from_pretrained(hatchling_dir)
    before = tokenizer.chat_template
    give_chat_format(tokenizer)  # one of its own: left alone
    assert tokenizer.chat_template == before
    tokenizer.chat_template = None
    tokenizer.eos_token = None
    with pytest.raises(NoChatFormat, match="no chat template and no end-of-sequence token"):
        give_chat_format(tokenizer)


def test_a_model_folder_that_cannot_load_is_refused_in_one_line_not_a_crash(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """A config.json that is not JSON (or not a model's) is refused before a hero slot is
    made; weights that do not load stop the engine at start with one line (it printed a
    traceback), and `realm status` says it would not start, not "it crashed, play resumes"."""
    from engine.run import main as engine_main

    saves = str(tmp_path / "saves")
    for name, text, said in (
        ("cut", '{"model_type": "qwen3", "hidden_size": 64', "its config.json cannot be read"),
        ("other", '{"_name_or_path": "x"}', "names no model_type"),
    ):
        folder = tmp_path / name
        shutil.copytree(hatchling_dir, folder)
        (folder / "config.json").write_text(text)
        refused = realm_here("train", "--saves", saves, "--hero", name, "--model", str(folder))
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr
        assert not (tmp_path / "saves" / name).exists()
    broken = tmp_path / "broken"
    shutil.copytree(hatchling_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    save = SaveDir(tmp_path / "saves" / "broken")
    save.create()
    save.config.write_text(HeroConfig(name="broken", model=str(broken), train=FAST_TRAIN).to_json())
    assert engine_main.main(["--save-dir", str(save.root), "--max-steps", "1"]) == engine_main.EXIT_BAD_CONFIG
    status = save.read_status()
    assert status["state"] == "crashed" and status["refused"] and "cannot load a causal LM" in status["error"]
    told = realm_here("status", "--saves", saves, "--hero", "broken")
    assert "the engine would not start: cannot load a causal LM" in told.stdout, told.stdout
    assert "resumes from the last loot" not in told.stdout
    as_json = json.loads(realm_here("status", "--json", "--saves", saves, "--hero", "broken").stdout)
    assert as_json["refused"] is True
    listed = realm_here("heroes", "--saves", saves).stdout
    assert any(
        line.startswith("broken ") and line.endswith("would not start") for line in listed.splitlines()
    )


def test_a_file_given_as_the_model_says_which_folder_to_give(tmp_path: Path, hatchling_dir: Path) -> None:
    """The weights file or config.json of a model folder, a llama.cpp/Ollama GGUF file or a
    folder of them: each says what to give instead, before any slot is made."""
    saves = str(tmp_path / "saves")
    model = tmp_path / "model"
    shutil.copytree(hatchling_dir, model)
    gguf = tmp_path / "ollama"
    gguf.mkdir()
    (gguf / "model-Q4_K_M.gguf").write_bytes(b"GGUF")
    for given, said in (
        (model / "model.safetensors", f"a file, not a folder: give the folder it is in ({model})"),
        (model / "config.json", f"give the folder it is in ({model})"),
        (gguf / "model-Q4_K_M.gguf", "a GGUF file is for inference"),
        (gguf, "no config.json in it; is it a save_pretrained folder? (a GGUF file is for inference"),
    ):
        refused = realm_here("train", "--saves", saves, "--hero", "h", "--model", str(given))
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr
    assert not (tmp_path / "saves" / "h").exists()
