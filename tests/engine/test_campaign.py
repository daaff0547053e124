"""Campaigns: the file (errors by line), the phase schedule, and phases run by the real
worker on the hatchling: transitions with loot, the rehearsal buffer, quests, gates."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.protocol import messages as p
from engine.protocol.config import TrainConfig
from engine.protocol.savedir import SaveDir
from engine.run import report
from engine.run.server import EngineServer
from engine.run.worker import Worker, run_with_rewinds
from engine.train.campaign import CampaignError, parse_campaign
from engine.train.campaign_files import SHIPPED, install, known_skills, locate
from engine.train.stream import RowsSource
from engine.train.trainer import Trainer
from tests.conftest import make_hero, realm_here

SKILLS = {"bin": 30, "sy": 50}

BAD_FILES = [
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    stpes: 3\n", 5, "did you mean 'steps'"),
    ("name: x\nphases: []\n", 2, "at least one phase"),
    ("name: x\nphases:\n  - name: a\n    skills: {zz: 1}\n    steps: 3\n", 4, "unknown skill 'zz'"),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n    steps: 4\n", 6, "given twice"),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n", 3, "exactly one of steps, epochs or until"),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n    epochs: 2\n", 3, "exactly one"),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 0}\n    steps: 3\n", 4, "must be a number > 0"),
    (
        "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n    lr: fast\n",
        6,
        "lr must be a number",
    ),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    epochs: 2\n", 5, "it has none"),
    (
        "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n  - name: b\n    skills: {sy: 1}\n"
        "    until:\n      - {skill: sy}\n",
        9,
        "needs level",
    ),
    (
        "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    until:\n      - {skill: bin, level: 31}\n",
        6,
        "bin has 30 levels, so level 31 is never reached",
    ),
    ("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n    rehearsal: 1.5\n", 6, "[0, 1)"),
    (
        "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n    schedule: wavy\n",
        6,
        "schedule",
    ),
    ("name: x\nwhen_done: nap\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n", 2, "when_done"),
    ("phases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n", None, "needs a name"),
    (
        "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    steps: 3\n  - name: a\n    skills: {bin: 1}\n"
        "    steps: 3\n",
        6,
        "two phases are called 'a'",
    ),
    ("name: [x\n", None, "not valid YAML"),
    ("", None, "empty"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BAD_FILES)
def test_campaign_file_errors_name_their_line(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(CampaignError) as caught:
        parse_campaign(text, SKILLS)
    assert fragment in str(caught.value)
    if line is not None:
        assert caught.value.line == line and str(caught.value).startswith(f"line {line}:")


def test_a_good_file_reads_whole() -> None:
    text = (
        "name: two\nrehearsal: 0.3\nphases:\n  - name: a\n    skills: [bin, sy]\n    steps: 10\n    lr: 2e-3\n"
        "  - name: b\n    skills: {sy: 2}\n    until: {skill: sy, level: 3}\n    max_steps: 50\n"
    )
    campaign = parse_campaign(text, SKILLS)
    first, second = campaign.phases
    assert first.skills == {"bin": 1.0, "sy": 1.0} and first.lr == 2e-3  # "2e-3" (YAML text) taken as meant
    assert second.until[0].label == "SY L3" and second.length == "until SY L3 (at most 50 steps)"
    assert campaign.rehearsal_of(0) == 0.0 and campaign.rehearsal_of(1) == 0.3
    assert campaign.skill_ids() == ["bin", "sy"]


def test_shipped_campaigns_are_valid() -> None:
    names = sorted(path.stem for path in SHIPPED.glob("*.yaml"))
    assert "specialist" in names
    for name in names:
        campaign = parse_campaign(locate(name).read_text(), known_skills())
        assert len(campaign.phases) >= 2


def test_quest_files_and_suites_are_checked_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"nothing": 1}\n')
    text = "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    quests: [missing.jsonl, bad.jsonl]\n    steps: 3\n"
    with pytest.raises(CampaignError, match=r"missing\.jsonl not found") as caught:
        parse_campaign(text, SKILLS, tmp_path, [])
    assert caught.value.line == 5
    (tmp_path / "missing.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    with pytest.raises(CampaignError, match=r"quest bad\.jsonl refused"):
        parse_campaign(text, SKILLS, tmp_path, [])
    suite = "name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    until:\n      - {suite: capitals, score: 0.8}\n"
    with pytest.raises(CampaignError, match="no eval suite 'capitals'") as caught:
        parse_campaign(suite, SKILLS, tmp_path, ["other"])
    assert caught.value.line == 6


# ---------------------------------------------------------------------- the phase's schedule


def _trainer(cfg: TrainConfig, first_step: int = 0) -> Trainer:
    torch.manual_seed(0)
    return Trainer(torch.nn.Linear(4, 4), cfg, torch.device("cpu"), first_step)


def test_a_phase_schedule_begins_at_its_first_step() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, decay_steps=100, schedule="linear", min_lr_ratio=0.0)
    trainer = _trainer(cfg, first_step=500)
    assert trainer.factor(500) == pytest.approx(1 / 11)  # the phase's warmup starts again
    assert trainer.factor(510) == pytest.approx(1.0)
    assert trainer.factor(555) == pytest.approx(0.5)  # linear: half way down the decay
    assert _trainer(replace(cfg, schedule="constant"), 500).factor(580) == 1.0


def test_a_loaded_state_keeps_this_schedules_learning_rate() -> None:
    old = _trainer(TrainConfig(lr=2e-3, warmup_steps=0))
    for _ in range(3):
        old.optimizer.step()
        old.scheduler.step()
    new = _trainer(TrainConfig(lr=5e-4, warmup_steps=0, schedule="constant"), first_step=3)
    new.load_state_dict(old.state_dict())
    assert new.scheduler.last_epoch == 3
    assert new.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


# ---------------------------------------------------------------------- the real worker


def _hero(tmp_path: Path, hatchling: Path, **game: Any) -> tuple[SaveDir, Any]:
    save, config = make_hero(tmp_path / "saves", hatchling, **game)
    config = replace(config, train=replace(config.train, seq_len=256))  # SY L1 fits
    save.config.write_text(json.dumps(asdict(config)))
    return save, config


def _campaign(tmp_path: Path, save: SaveDir, text: str) -> None:
    file = tmp_path / "campaign.yaml"
    file.write_text(text)
    install(save, file)


class Recorder(EngineServer):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.observers.append(self.events.append)


def _run(save: SaveDir, config: Any) -> tuple[list[Worker], Recorder]:
    server = Recorder()
    worker = Worker(save, config, server)
    worker.start()
    workers = [worker]
    run_with_rewinds(worker, workers.append)
    for w in workers:
        w.ledger.close()
    return workers, server


TWO_PHASES = """\
name: two
when_done: stop
phases:
  - name: general
    skills: {bin: 1}
    steps: 6
    lr: 3e-3
  - name: special
    skills: {sy: 1}
    steps: 5
    lr: 1e-3
    schedule: constant
    warmup_steps: 0
    rehearsal: 0.25
"""


def test_two_phases_end_with_loot_and_the_second_rehearses_the_first(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = _hero(tmp_path, hatchling_dir)
    _campaign(tmp_path, save, TWO_PHASES)
    workers, server = _run(save, config)
    assert [w.stop_reason for w in workers] == ["campaign", "campaign done"]
    first, last = workers
    assert first.progress.step == 6 and last.progress.step == 11
    # Phase 1 trained BIN alone; phase 2 trains SY with a quarter of BIN rehearsed.
    assert {(s.label, s.weight) for s in first.stream.sources} == {("BIN L1", 1.0)}
    weights = {s.label: round(s.weight, 3) for s in last.stream.sources}
    assert weights == {"SY L1": 0.75, "BIN L1": 0.25}
    assert last.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    # Each phase ended with loot carrying the next phase's state; both skills were evaluated.
    rows = {r["name"]: r for r in last.ledger.live_loot()}
    assert rows["step-000006"]["reason"] == "phase" and rows["step-000011"]["reason"] == "phase"
    meta = json.loads((save.checkpoints / "step-000006" / "meta.json").read_text())["campaign"]
    assert meta["phase"] == 1 and meta["phase_start"] == 6 and meta["history"][0]["reason"] == "6 steps"
    assert set(meta["history"][0]["scores"]) == {"bin", "sy"}
    news = [e for e in server.events if isinstance(e, p.CampaignUpdated)]
    assert [n.news.split(" at ")[0] for n in news] == [
        "Phase general complete (6 steps)",
        "Phase special complete (5 steps)",
    ]
    final = news[-1].campaign
    assert final is not None and final.finished and [ph.state for ph in final.phases] == ["done", "done"]
    status = json.loads(save.status.read_text())["campaign"]
    assert status["finished"] and status["phases"][1]["loot"] == "step-000011"
    last.last_watched = {"time": 0.0, "step": 0, "level": 0}  # a player who left at the start
    away = report.away_summary(last)
    assert away is not None and away.phases == ("general (6 steps)", "special (5 steps)")
    unlocked = json.loads(save.achievements.read_text())["unlocked"]
    assert unlocked["campaign-phase"]["step"] == 6 and unlocked["campaign-done"]["step"] == 11


def test_a_resumed_phase_makes_the_same_decisions(tmp_path: Path, hatchling_dir: Path) -> None:
    """Killed mid-phase (here: stopped, then the engine's state rewound to the loot, as
    a kill -9 leaves it), a new engine resumes in the phase, at its row, with its lr."""
    save, config = _hero(tmp_path, hatchling_dir)
    _campaign(tmp_path, save, TWO_PHASES.replace("steps: 5", "steps: 9"))
    short = replace(config, game=replace(config.game, max_steps=8))
    workers, _ = _run(save, short)  # phase 2 runs steps 7-8, then max_steps stops it
    assert workers[-1].campaign is not None and workers[-1].campaign.index == 1
    resumed = Worker(save, config, EngineServer())
    resumed.start()
    assert resumed.progress.step == 8 and resumed.campaign is not None
    assert resumed.campaign.index == 1 and resumed.campaign.state.phase_start == 6
    assert resumed.stream.position == workers[-1].stream.position
    assert resumed.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    resumed.run()
    assert resumed.progress.step == 15 and resumed.stop_reason == "campaign done"
    resumed.ledger.close()


def test_an_until_phase_ends_at_its_cap_and_a_gate_of_suites_passes(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = _hero(tmp_path, hatchling_dir, eval_every=3)
    (save.root / "suites").mkdir()
    (save.root / "suites" / "easy.jsonl").write_text('{"id": "q1", "question": "hi", "regex": ".*"}\n')
    _campaign(
        tmp_path,
        save,
        "name: gates\nwhen_done: stop\nphases:\n"
        "  - name: suite\n    skills: {bin: 1}\n    until:\n      - {suite: easy, score: 0.5}\n"
        "  - name: capped\n    skills: {bin: 1}\n    until:\n      - {skill: bin, level: 9}\n    max_steps: 4\n",
    )
    workers, _ = _run(save, config)
    history = workers[-1].campaign.state.history  # type: ignore[union-attr]
    assert [(r.name, r.start, r.end) for r in history] == [("suite", 0, 3), ("capped", 3, 7)]
    assert history[0].reason == "gate passed: easy ≥ 50%"
    assert history[1].reason.startswith("4 steps without passing the gate (BIN L9 not reached)")


def test_a_quest_phase_lasts_its_epochs_and_later_phases_rehearse_its_rows(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    save, config = _hero(tmp_path, hatchling_dir)
    rows = [{"prompt": f"Say {word}.", "completion": word} for word in ("red", "blue", "green", "gold")]
    (tmp_path / "colours.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _campaign(
        tmp_path,
        save,
        "name: lore\nwhen_done: stop\nphases:\n"
        "  - name: colours\n    skills: {bin: 1}\n    quests: [colours.jsonl]\n    epochs: 2\n"
        "  - name: after\n    skills: {bin: 1}\n    steps: 2\n    rehearsal: 0.5\n",
    )
    workers, _ = _run(save, config)
    history = workers[-1].campaign.state.history  # type: ignore[union-attr]
    assert history[0].reason == "its quests are done"
    done = json.loads(save.status.read_text())
    assert done["campaign"]["finished"]
    quests = [
        q for q in workers[-1].keeper.board() if q.name.endswith("colours.jsonl")
    ]  # the first worker let go of its keeper
    assert quests and quests[0].state == "done" and quests[0].epochs == 2
    rehearsed = [s for s in workers[-1].stream.sources if isinstance(s, RowsSource)]
    assert len(rehearsed) == 1 and len(rehearsed[0].rows) == 4
    assert sum(s.weight for s in workers[-1].stream.sources) == pytest.approx(1.0)


# ---------------------------------------------------------------------- the command line


def test_realm_campaign_offline(tmp_path: Path, hatchling_dir: Path) -> None:
    save, _ = _hero(tmp_path, hatchling_dir)
    saves = str(save.root.parent)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nphases:\n  - name: a\n    skills: {bin: 1}\n    stpes: 3\n")
    checked = realm_here("campaign", "check", str(bad), "--saves", saves)
    assert checked.returncode == 1 and "bad.yaml line 5" in checked.stderr and "'steps'" in checked.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    checked = realm_here("campaign", "check", str(empty), "--saves", saves)
    assert checked.returncode == 1 and "empty.yaml: the file is empty" in checked.stderr  # no line: a colon
    refused = realm_here("campaign", "start", str(bad), "--saves", saves)
    assert refused.returncode == 1 and not save.campaign.exists()
    started = realm_here("campaign", "start", "specialist", "--saves", saves)
    assert started.returncode == 0 and "begins when DIO next trains" in started.stdout
    assert json.loads(save.campaign.read_text())["campaign"]["name"] == "specialist"
    shown = realm_here("campaign", "status", "--saves", saves)
    assert "not begun yet" in shown.stdout and "2. specialist" in shown.stdout
    as_json = json.loads(realm_here("campaign", "status", "--json", "--saves", saves).stdout)
    assert [ph["name"] for ph in as_json["phases"]] == ["general", "specialist"]
    again = realm_here("campaign", "start", "specialist", "--saves", saves)
    assert again.returncode == 1 and "realm campaign stop" in again.stderr
    # Once the engine has written it finished, a new campaign replaces it (kept aside first).
    save.status.write_text(json.dumps({"campaign": {**as_json, "finished": True}}))
    replaced = realm_here("campaign", "start", "specialist", "--saves", saves)
    assert replaced.returncode == 0, replaced.stderr
    assert len(list(save.campaign_files.glob("ended-*.json"))) == 1
    left = realm_here("campaign", "stop", "--saves", saves)
    assert left.returncode == 0 and not save.campaign.exists()
    assert len(list(save.campaign_files.glob("ended-*.json"))) == 2  # kept aside, not deleted
    assert "follows no campaign" in realm_here("campaign", "status", "--saves", saves).stdout


def test_the_documented_example_is_a_valid_campaign() -> None:
    """`realm campaign --help` (and the README, which copies it) shows a file that parses."""
    from tui.cli.campaign import CAMPAIGN_HELP

    example = CAMPAIGN_HELP.split("\n\n")[1]
    campaign = parse_campaign(example, known_skills())
    assert [ph.name for ph in campaign.phases] == ["general", "specialist"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(line.strip() in readme for line in example.splitlines())
