"""The one progression rule, its state across restarts, and the engine's skill level-up."""

from __future__ import annotations

from dataclasses import replace
from multiprocessing import Pipe

import pytest

from engine.evals.skill_evals import SkillEval
from engine.protocol import messages as p
from engine.run import report
from engine.run.server import EngineServer
from engine.run.worker import Worker
from engine.train.curriculum import Curriculum, gate_passed, gate_progress
from skills.registry import get_skill


def test_gate_needs_the_last_three_evals_at_threshold() -> None:
    assert not gate_passed([0.9, 0.9], 0.8)
    assert gate_passed([0.9, 0.8, 0.95], 0.8)
    assert not gate_passed([0.9, 0.79, 0.95], 0.8)
    assert gate_passed([0.1, 0.9, 0.85, 0.81], 0.8)  # only the last three count
    assert gate_progress([0.1, 0.9, 0.85], 0.8) == 2


def test_curriculum_levels_up_and_resets_evals() -> None:
    bin_skill = get_skill("bin")
    cur = Curriculum([bin_skill], {"bin": 1.0}, rehearsal=0.2)
    assert [s.level for s in cur.sources()] == [1]
    assert cur.record_eval("bin", 0.9, 100) is None
    assert cur.record_eval("bin", 0.9, 200) is None
    assert cur.record_eval("bin", 0.9, 300) == 2
    track = cur.tracks["bin"]
    assert track.level == 2 and track.evals == [] and track.mastered == {1: 300}
    sources = cur.sources()
    assert [(s.level, round(s.weight, 2)) for s in sources] == [(2, 0.8), (1, 0.2)]  # rehearsal
    restored = Curriculum([bin_skill], {"bin": 1.0}, rehearsal=0.2)
    restored.load(cur.to_dict())
    assert restored.to_dict() == cur.to_dict()


def test_a_skill_taken_out_of_the_mix_keeps_its_level_for_when_it_comes_back() -> None:
    bin_skill, sy_skill = get_skill("bin"), get_skill("sy")
    both = Curriculum([bin_skill, sy_skill], {"bin": 1.0, "sy": 0.3}, rehearsal=0.2)
    for step in (100, 200, 300):
        both.record_eval("sy", 0.9, step)
    assert both.tracks["sy"].level == 2
    alone = Curriculum([bin_skill], {"bin": 1.0}, rehearsal=0.2)  # sy set to 0 for a while
    alone.load(both.to_dict())
    assert "sy" not in alone.tracks and [s.skill.id for s in alone.sources()] == ["bin"]
    back = Curriculum([bin_skill, sy_skill], {"bin": 1.0, "sy": 0.3}, rehearsal=0.2)
    back.load(alone.to_dict())  # the checkpoints in between carried it
    assert back.tracks["sy"].level == 2 and back.tracks["sy"].mastered == {1: 300}


def test_engine_skill_level_up_survives_restart(hero, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    save, config = hero
    config = replace(config, game=replace(config.game, eval_every=2, max_steps=6))

    def perfect(skill, problems, answers):  # type: ignore[no-untyped-def]
        return SkillEval(1.0, len(problems), problems[0], problems[0].answer, True)

    monkeypatch.setattr("engine.run.worker.score_answers", perfect)
    server = EngineServer()
    worker = Worker(save, config, server)
    worker.start()
    ui, engine_end = Pipe()
    server.attach(engine_end)
    ui.send(p.Hello())
    worker.run()  # evals at 2, 4, 6: the third opens the gate
    worker.ledger.close()
    events = []
    while ui.poll(0.5):
        events.append(ui.recv())
    ups = [e for e in events if isinstance(e, p.SkillLevelledUp)]
    assert [(e.skill, e.level, e.step) for e in ups] == [("bin", 2, 6)]
    evals = [e for e in events if isinstance(e, p.EvalCompleted)]
    assert [e.skill.gate_passes for e in evals if e.skill] == [1, 2, 0]  # reset at the new level
    assert worker.stream.label == "BIN L2"
    # A new engine on the same save resumes at BIN level 2.
    again = Worker(save, replace(config, game=replace(config.game, max_steps=6)), EngineServer())
    again.start()
    assert again.curriculum.tracks["bin"].level == 2
    assert again.curriculum.tracks["bin"].mastered == {1: 6}
    assert report.skill_info(again, "bin").level == 2
    assert report.status_dict(again)["skills"]["bin"]["level"] == 2
