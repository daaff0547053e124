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
