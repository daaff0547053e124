"""Any local Hugging Face folder is a hero: the CLI refuses what cannot work before a
slot is made, and the engine trains the folder in place (no copy into the save)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir
from tests.conftest import FAST_GAME, FAST_TRAIN, realm_here, run_worker


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
