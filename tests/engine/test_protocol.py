"""Every protocol message survives a trip over a real Pipe, unchanged and frozen."""

from __future__ import annotations

import dataclasses
import json
from multiprocessing import Pipe

import pytest

from engine.protocol import messages as p

STATS = p.HeroStats(step=1234, level=1, atk=0.7, defense=0.5, acc=0.25, gold=100, train_loss=1.4)
LOOT = p.LootInfo(
    step=1000,
    name="step-001000",
    time=1.0,
    reason="auto",
    train_loss=1.2,
    val_loss=1.3,
    lr=1e-3,
    source="ARI L2",
)
SKILL = p.SkillInfo(id="bin", name="Binary", icon="B", colour="#fff", level=2, max_level=30, threshold=0.8,
                    gate_window=3, evals=(0.5, 0.9), mastered=(1,), sample_prompt="Compute: add(①, ①)",
                    sample_answer="add(①, ①) = ①⓪", sample_correct=True)  # fmt: skip
QUEST = p.QuestInfo(name="hi.jsonl", state="active", priority="high", rows=30, epochs=2, seen=40,
                    notices=("converted 30 ShareGPT rows to chat_sft_v1",), loss_before=3.2)  # fmt: skip
SAMPLES = [
    p.Hello(),
    p.Hello(client="realm quest", watcher=False),
    p.AddQuest(path="/tmp/hi.jsonl", priority="high", epochs=2, checks="deep"),
    p.CancelQuest("hi.jsonl"),
    p.RetryQuest("hi.jsonl"),
    p.SetQuestPriority("hi.jsonl", "low"),
    p.QuestBoard((QUEST,)),
    p.QuestRejected("bad.jsonl", "line 3: invalid JSON"),
    p.QuestCompleted(QUEST, gold=100, loot="step-000120"),
    p.QuestReply(True, "queued"),
    p.TaskUpdated(p.TaskInfo(3, "eval", "eval at step 200", "running", 12, 70, "", 1.0, 2.0)),
    p.Spar(),
    p.Spar("bin", 16),
    p.AddSuite("/tmp/mine.jsonl"),
    p.ListSuites(),
    p.RunSuite("mine"),
    p.RunSuite("mine", "step-000120"),
    p.CompareSuite("mine", "step-000120", "live@200"),
    p.SuiteReply(True, "mine on step-000120: 60% of 20 questions", '{"score": 0.6}'),
    p.ListLoot(),
    p.PinLoot("step-000120"),
    p.PinLoot("step-000120", pinned=False),
    p.DeleteLoot("step-000120"),
    p.PruneLoot(),
    p.RewindTo("step-000120"),
    p.EvalLoot("step-000120"),
    p.CompareLoot("step-000120", "step-000240"),
    p.Ask("q1", ("0b1 + 0b1 = ?", "0b10", "and 0b10 + 0b1?"), "step-000120", 0.7, 0.9, 64, 3),
    p.VaultListed(
        loot=(
            p.LootInfo(
                120,
                "step-000120",
                1.0,
                "auto",
                1.2,
                1.3,
                1e-3,
                "BIN L1",
                10,
                True,
                ("pinned",),
                (p.SkillScore("bin", 2, 0.75, 8),),
                metrics=(("capitals", 0.9),),
            ),
        ),
        doomed=(("step-000100", "older than the 5 newest, not pinned, not best"),),
        kept_bytes=10,
        budget_bytes=100,
        resume_from="step-000120",
        best=(("bin", "step-000120"),),
    ),
    p.VaultReply(False, "no loot 'x'"),
    p.LootCompared(
        "step-000120",
        "step-000240",
        (("val_loss", 1.2, 1.1),),
        (p.ProblemDiff("bin", 2, "1+1", False, True),),
    ),
    p.OracleToken("q1", "0b1"),
    p.OracleAnswered("q1", "step-000120", 120, "0123456789abcdef", "0b11", 3, 0.2, 0.01, "beside"),
    p.GpuTelemetry(p.GpuStats(available=True, name="H100", utilization=50.0, memory_used=1, memory_total=2)),
    p.Pause(),
    p.Resume(),
    p.SaveNow(),
    p.RunEval(),
    p.Stop(),
    p.Goodbye(),
    p.Snapshot(
        protocol_version=p.PROTOCOL_VERSION,
        hero="dio",
        model="hatchling",
        device="cpu",
        state="training",
        pid=42,
        stats=STATS,
        tokens_per_s=3000.0,
        source="ARI L2",
        train_losses=((1, 2.0), (2, 1.5)),
        val_losses=((2, 1.7),),
        loot=(LOOT,),
        log=("hello",),
        masked_fraction=0.8,
        params=3_000_000,
        skills=(SKILL,),
        away=p.AwaySummary(seconds=60, steps_gained=100, levels_gained=0, loot_steps=(1000,), restarted=True),
        quests=(QUEST,),
        gpu=p.GpuStats(),
        memory_plan="est. 0.9 GiB RAM",
    ),
    p.StepCompleted(
        step=5,
        steps=2,
        loss=1.5,
        smoothed_loss=1.6,
        lr=1e-3,
        grad_norm=0.9,
        tokens_per_s=2000,
        stats=STATS,
        quest=QUEST,
    ),
    p.Paused(step=5),
    p.Resumed(step=5),
    p.CheckpointSaved(loot=LOOT),
    p.LevelledUp(level=2, step=2000),
    p.EvalCompleted(step=100, val_loss=1.1, accuracy=0.5, problems=32, skill=SKILL),
    p.SkillLevelledUp(skill="bin", name="Binary", level=2, step=300),
    p.WatchdogIntervened(step=640, kind="rollback", reason="loss is NaN", lr_scale=0.5, loot="step-000500"),
    p.AchievementUnlocked(p.AchievementInfo("first-loot", "Treasure hunter", "Save a first loot", 200)),
    p.StartCampaign("/home/me/specialist.yaml"),
    p.EndCampaign(),
    p.ReadLog(limit=50),
    p.SetConfig("train.lr", "5e-4", dry_run=True),
    p.Buy("portrait-cat"),
    p.Wear("theme-light"),
    p.CampaignUpdated(
        p.CampaignInfo(
            "specialist",
            (
                p.PhaseInfo(
                    "general",
                    "done",
                    "BIN ×1 · SY ×1",
                    "600 steps",
                    "lr 2e-03 cosine, warmup 50",
                    0.0,
                    start_step=0,
                    end_step=600,
                    progress=1.0,
                    loot="step-000600",
                    result="600 steps",
                ),
                p.PhaseInfo(
                    "specialist",
                    "current",
                    "SY ×1",
                    "until SY L3",
                    "lr 1e-03 constant, warmup 20",
                    0.2,
                    start_step=600,
                    gate="SY L2 (needs L3)",
                ),
            ),
            current=1,
        ),
        news="Phase general complete",
    ),
    p.CampaignReply(False, "line 3: unknown key"),
    p.LogRead(rows=(p.LogLine("Loot! Checkpoint step-000200 (auto)", "info", "loot", 200, 1.5e9),), total=1),
    p.ConfigReply(True, "train.lr: 0.002 → 0.0005 (from the next step)", '{"name": "dio"}', "now"),
    p.ShopReply(
        True,
        "Bought Cat for 100 gold (20 left) and put it on",
        p.ShopInfo(20, (p.WareInfo("portrait-cat", "portrait", "Cat", 100, "cat", owned=True, worn=True),)),
    ),
    p.LogLine("loot!"),
    p.CommandRejected("Pause", "why"),
    p.EngineFailed("RuntimeError: boom", "Traceback…"),
    p.Stopped(step=10, last_loot_step=10),
    p.HandshakeError("versions differ"),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_over_pipe(message: object) -> None:
    a, b = Pipe()
    a.send(message)
    received = b.recv()
    assert received == message
    assert type(received) is type(message)


WITH_FIELDS = [m for m in SAMPLES if dataclasses.fields(m)]  # type: ignore[arg-type]


@pytest.mark.parametrize("message", WITH_FIELDS, ids=lambda m: type(m).__name__)
def test_messages_are_frozen(message: object) -> None:
    first = dataclasses.fields(message)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, first, None)


def test_every_message_type_is_sampled() -> None:
    """A new command or event must be added to SAMPLES (and so be round-tripped)."""
    command_types = set(p.Command.__args__)  # type: ignore[attr-defined]
    event_types = set(p.Event.__args__)  # type: ignore[attr-defined]
    assert command_types | event_types <= {type(m) for m in SAMPLES}


def test_quest_progress_counts_epochs() -> None:
    assert QUEST.total == 60 and QUEST.epoch == 2 and QUEST.fraction == pytest.approx(40 / 60)
    done = dataclasses.replace(QUEST, seen=60)
    assert done.epoch == 2 and done.fraction == 1.0


def test_xp_into_level() -> None:
    assert p.HeroStats(step=2345, level=2, xp_per_level=1000).xp_into_level == 345


def test_vault_listing_and_ask_survive_json() -> None:
    """The offline paths carry these as JSON: they must come back equal."""
    listing = next(m for m in SAMPLES if isinstance(m, p.VaultListed))
    assert p.vault_listed_from_dict(json.loads(json.dumps(dataclasses.asdict(listing)))) == listing
    ask = next(m for m in SAMPLES if isinstance(m, p.Ask))
    assert p.command_from_dict(json.loads(json.dumps(p.command_to_dict(ask)))) == ask
