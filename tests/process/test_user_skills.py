"""A user's skill that breaks (its module, its YAML) after DIO trained on it: the engine
says so in one line and starts no run, nothing in the save is lost, and taking the skill
out of the mix (weight 0, which needs no module) lets DIO train on; its level waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, make_hero


def realm_with(skills: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REALM_SKILLS": str(skills)}
    command = [sys.executable, "-m", "tui.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_broken_skill_in_the_mix_stops_the_start_in_one_line_and_can_be_taken_out(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    skills = tmp_path / "skills"
    skills.mkdir()
    (skills / "twice.yaml").write_text(
        "id: twice\nname: Twice\nmax_level: 1\nmodule: twice_skill:Twice\nlevels:\n  1: {}\n"
    )
    (skills / "twice_skill.py").write_text("def twice(:\n")
    save, _ = make_hero(tmp_path / "saves", hatchling_dir, skills={"bin": 1.0, "twice": 0.5})
    saves = str(tmp_path / "saves")
    started = realm_with(skills, "train", "--saves", saves, "--max-steps", "4")
    assert started.returncode != 0 and "Traceback" not in started.stderr, started.stderr
    assert "twice.yaml left out: SyntaxError" in started.stderr
    assert "realm config set game.skills.twice 0" in started.stderr
    status = json.loads(realm_with(skills, "status", "--saves", saves, "--json").stdout)
    assert status["refused"], status
    taken_out = realm_with(skills, "config", "set", "game.skills.twice", "0", "--saves", saves)
    assert taken_out.returncode == 0, taken_out.stderr
    trained = realm_with(skills, "train", "--saves", saves, "--max-steps", "4")
    assert trained.returncode == 0, trained.stderr
    assert "twice.yaml left out" in trained.stderr  # said at start, in the log book too
    assert json.loads(save.config.read_text())["game"]["skills"] == {"bin": 1.0}
