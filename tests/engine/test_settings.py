"""Settings by key (`realm config`, the Armory, SetConfig) and the log book (ReadLog)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.model.hero import has_fp16
from engine.protocol import messages as p
from engine.protocol import settings
from engine.protocol.config import HeroConfig
from engine.run import main as engine_main
from engine.run.logbook import kind_of, read_log
from tests.conftest import make_hero, realm_here, run_engine

BASE = json.loads(HeroConfig(name="dio").to_json())


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("train.lrr", "1e-3", "did you mean train.lr"),
        ("train.lr", "fast", "is a number"),
        ("train.lr", "2", "lr must be in (0, 1)"),
        ("vault.keep_last", "2.5", "whole number"),
        ("vault.keep_last", "0", "keep_last must be > 0"),
        ("watchdog.enabled", "maybe", "true or false"),
        ("train.schedule", "wavy", "schedule must be one of"),
        ("oracle.max_new_tokens", "5000", "at most 4096"),  # no Ask could carry it
        ("game.skills", "1", "game.skills.ID"),
        ("game.skills.bin", "-1", "weight > 0"),
        ("model", "/elsewhere", "make a new hero"),
        ("name", "other", "cannot be changed"),
        ("nonsense", "1", "realm config get"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(key: str, value: str, says: str) -> None:
    with pytest.raises(settings.SettingError) as refused:
        settings.set_value(BASE, key, value)
    assert says in str(refused.value)


def test_a_setting_is_parsed_to_its_type_and_the_rest_is_kept() -> None:
    out = settings.set_value(BASE, "train.lr", "5e-4")
    assert out["train"]["lr"] == 5e-4 and isinstance(out["train"]["lr"], float)
    assert out["game"] == BASE["game"] and BASE["train"]["lr"] == 2e-3  # the input is not changed
    assert settings.set_value(BASE, "vault.keep_last", "7")["vault"]["keep_last"] == 7
    assert settings.set_value(BASE, "game.bell", "on")["game"]["bell"] is True
    mix = settings.set_value(BASE, "game.skills.sy", "0")["game"]["skills"]
    assert mix == {"bin": 1.0}  # 0 takes a skill out of the mix
    config = HeroConfig.from_dict(settings.set_value(BASE, "game.skills.ari", "0.5"))
    assert config.game.skills == {"bin": 1.0, "sy": 0.3, "ari": 0.5}


def test_every_key_can_be_read_and_says_when_it_applies() -> None:
    config = HeroConfig(name="dio")
    keys = settings.all_keys(config)
    assert "train.lr" in keys and "game.skills.sy" in keys and "watchdog.enabled" in keys
    assert all(settings.describe(config, k) for k in keys)  # every field explains itself
    assert settings.applies("train.lr") == "now" and settings.applies("vault.keep_last") == "now"
    assert settings.applies("train.seq_len") == "restart" and settings.applies("lora.rank") == "restart"


def test_every_description_fits_the_armorys_help_at_80_columns() -> None:
    """The Armory shows "key: description" in at most 4 lines (tui/realm.tcss, #armory-help)
    78 columns wide at 80×24: a longer one is cut where a newcomer cannot read the rest."""
    import textwrap

    config = HeroConfig(name="dio")
    long = {}
    for key in settings.all_keys(config):
        lines = textwrap.wrap(f"{key}: {settings.describe(config, key)}", 78)
        if len(lines) > 4:
            long[key] = len(lines)
    assert not long, long


def test_log_kinds_come_from_the_engine_words() -> None:
    assert kind_of("LEVEL UP! DIO reached level 3") == "level"
    assert kind_of("Loot! Checkpoint step-000200 (auto)") == "loot"
    assert kind_of("Quest bin20.jsonl joins the normal queue: 20 rows") == "quest"
    assert kind_of("Eval at step 100: BIN L1: 50%") == "eval"
    assert kind_of("The engine died at step 310; resuming from loot 300") == "crash"
    assert kind_of("DIO wakes on cpu at step 0 (base model): 3.4M params") == "run"
    assert kind_of("DIO rolls back from step 1,200 to step-001000: NaN loss") == "watchdog"
    assert kind_of("something new") == "other"


@pytest.mark.slow
def test_live_settings_reach_the_running_worker(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    config = replace(config, train=replace(config.train, schedule="constant", warmup_steps=0))
    save.config.write_text(config.to_json())
    driver, worker, thread = run_engine(save, config)
    try:
        driver.send(p.Hello())
        driver.wait_for(p.StepCompleted)
        driver.send(p.SetConfig("train.lr", "5e-4", dry_run=True))
        checked = driver.wait_for(p.ConfigReply)
        assert checked.ok and checked.dry_run and "nothing changed" in checked.message
        assert json.loads(save.config.read_text())["train"]["lr"] == 3e-3  # a dry run changes nothing

        driver.send(p.SetConfig("train.lr", "5e-4"))
        reply = driver.wait_for(p.ConfigReply)
        assert reply.ok and reply.applies == "now", reply.message
        assert json.loads(save.config.read_text())["train"]["lr"] == 5e-4
        after = driver.wait_for(p.StepCompleted)
        after = driver.wait_for(p.StepCompleted)
        assert after.lr == pytest.approx(5e-4)  # constant schedule: the new peak at once

        driver.send(p.SetConfig("train.seq_len", "256"))
        later = driver.wait_for(p.ConfigReply)
        assert later.ok and later.applies == "restart" and "memory" in later.message
        assert json.loads(save.config.read_text())["train"]["seq_len"] == 256
        assert worker.config.train.seq_len == 128  # the rows being trained keep their shape

        driver.send(p.SetConfig("train.seq_len", "4096"))  # the hatchling has 2,048 positions
        past = driver.wait_for(p.ConfigReply)
        assert not past.ok and "past the model's 2,048 positions" in past.message
        assert json.loads(save.config.read_text())["train"]["seq_len"] == 256

        if not has_fp16(torch.device("cpu")):  # emulated here: refused now, not at the next start
            driver.send(p.SetConfig("train.precision", "fp16"))
            emulated = driver.wait_for(p.ConfigReply)
            assert not emulated.ok and "would emulate it" in emulated.message, emulated.message
            assert json.loads(save.config.read_text())["train"]["precision"] == "auto"

        driver.send(p.SetConfig("train.lr", "7"))
        refused = driver.wait_for(p.ConfigReply)
        assert not refused.ok and "lr must be in" in refused.message
        assert json.loads(save.config.read_text())["train"]["lr"] == 5e-4

        driver.send(p.SaveNow())
        driver.wait_for(p.CheckpointSaved)
        driver.send(p.ReadLog(limit=1000))
        book = driver.wait_for(p.LogRead)
        kinds = {row.kind for row in book.rows}
        assert {"loot", "run"} <= kinds, kinds
        assert any("train.lr: 0.003 → 0.0005" in row.text for row in book.rows)
        assert book.rows[-1].step > 0
    finally:
        worker.request_stop("test over")
        thread.join(60)
    rows = read_log(save, 5).rows
    assert len(rows) == 5 and rows[-1].kind == "run"  # "DIO rests at step N"


@pytest.mark.slow
def test_a_skill_weight_changes_the_mix_from_the_next_step(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir, skills={"bin": 1.0, "sy": 1.0})
    config = replace(config, train=replace(config.train, seq_len=256))  # SY L1 needs the room
    save.config.write_text(config.to_json())
    driver, worker, thread = run_engine(save, config)
    try:
        driver.send(p.Hello())
        driver.wait_for(p.StepCompleted)
        assert {s.skill.id for s in worker.stream.sources} == {"bin", "sy"}
        driver.send(p.SetConfig("game.skills.sy", "0"))
        assert driver.wait_for(p.ConfigReply).applies == "now"
        driver.wait_for(p.StepCompleted)
        assert {s.skill.id for s in worker.stream.sources} == {"bin"}
        driver.send(p.SetConfig("game.skills.ari", "1"))
        added = driver.wait_for(p.ConfigReply)
        assert added.ok and added.applies == "restart"  # a new skill needs its eval sets
    finally:
        worker.request_stop("test over")
        thread.join(60)


def test_realm_config_offline_writes_the_file_under_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "saves"
    done = realm_here("config", "set", "train.lr", "4e-4", "--saves", str(root))
    assert done.returncode == 0, done.stderr
    assert "train.lr: 0.002 → 0.0004" in done.stdout
    assert json.loads((root / "dio" / "config.json").read_text())["train"]["lr"] == 4e-4
    bad = realm_here("config", "set", "train.lr", "x", "--saves", str(root))
    assert bad.returncode == 1 and "is a number" in bad.stderr
    shown = realm_here("config", "get", "train.lr", "--saves", str(root))
    assert shown.stdout.strip() == "0.0004"
    listed = realm_here("config", "get", "--saves", str(root))
    assert "train.lr" in listed.stdout and "restart" in listed.stdout
    # every word of a description is there, wrapped under its column (it was cut at 60)
    assert "the model init and the quest shuffles. train.micro_batch" in " ".join(listed.stdout.split())
    section = realm_here("config", "get", "vault", "--saves", str(root))
    keys = [line.split()[0] for line in section.stdout.splitlines() if line.startswith("vault.")]
    assert section.returncode == 0 and "vault.keep_last" in keys and all(k.startswith("vault.") for k in keys)


def test_an_offline_batch_change_says_the_memory_it_needs(tmp_path: Path) -> None:
    import re

    root = str(tmp_path / "saves")

    def gib(text: str) -> float:
        found = re.search(r"memory: est\. ([0-9.]+) GiB RAM", text)
        assert found, text
        return float(found.group(1))

    small = realm_here("config", "set", "train.micro_batch", "8", "--dry-run", "--saves", root)
    big = realm_here("config", "set", "train.micro_batch", "64", "--dry-run", "--saves", root)
    assert small.returncode == big.returncode == 0, small.stderr + big.stderr
    assert "nothing changed" in big.stdout and gib(big.stdout) > gib(small.stdout)
    plain = realm_here("config", "set", "train.lr", "1e-3", "--dry-run", "--saves", root)
    assert "memory" not in plain.stdout  # only the batch's shape changes the memory


def test_rows_longer_than_the_model_can_place_are_refused_offline_and_at_start(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """train.seq_len past max_position_embeddings: `realm config set` refuses it, and a
    config.json edited by hand to it stops the engine at start with the same line (it
    used to try rows that long: 100,000,000 tokens was an estimate of 6,580 GiB)."""
    root = str(tmp_path / "saves")
    refused = realm_here("config", "set", "train.seq_len", "100000000", "--saves", root)
    assert refused.returncode == 1 and "past the model's 2,048 positions" in refused.stderr
    assert realm_here("config", "set", "train.seq_len", "2048", "--saves", root).returncode == 0
    save, config = make_hero(tmp_path / "hand", hatchling_dir)
    save.config.write_text(replace(config, train=replace(config.train, seq_len=4096)).to_json())
    assert engine_main.main(["--save-dir", str(save.root), "--max-steps", "1"]) == engine_main.EXIT_BAD_CONFIG
    assert "past the model's 2,048 positions" in save.read_status()["error"]


def test_offline_change_is_refused_while_an_engine_holds_the_lock(tmp_path: Path) -> None:
    from engine.protocol.savedir import SaveDir

    save = SaveDir(tmp_path / "dio")
    save.create()
    lock = save.try_lock()
    assert lock is not None
    try:
        args = ["--save-dir", str(save.root), "train.lr", "1e-3"]
        done = subprocess.run([sys.executable, "-m", "engine.run.settings_work", *args], capture_output=True)
        assert done.returncode == 3  # the CLI then asks the engine over the socket
        assert not save.config.exists()
    finally:
        lock.close()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"name": "dio", "train": {"lr": "fast"}}', "train.lr must be a number, not 'fast'"),
        ('{"name": "dio", "vault": {"keep_last": true}}', "vault.keep_last must be a whole number"),
        (
            '{"name": "dio", "game": {"skills": {"bin": "x"}}}',
            "game.skills must be an object of names to numbers",
        ),
        ('{"name": "dio", "train": 5}', "train must be an object of settings"),
        ('{"train": {}}', "no 'name'"),
        ("[1]", "a JSON object of settings"),
        ('{"name": "dio", "train": {"lr": 0.002', "Expecting"),
    ],
)
def test_a_hand_broken_config_is_one_line_naming_the_file_and_field(
    tmp_path: Path, text: str, says: str
) -> None:
    hero = tmp_path / "dio"
    hero.mkdir()
    (hero / "config.json").write_text(text)
    with pytest.raises(ValueError, match=r"config\.json is not a valid config: ") as refused:
        HeroConfig.load(hero / "config.json")
    assert says in str(refused.value)
    started = realm_here("train", "--saves", str(tmp_path), "--max-steps", "1")
    assert started.returncode == 1 and says in started.stderr and "Traceback" not in started.stderr
    assert not (hero / "engine.log").exists()  # refused before an engine was started
