"""Rows sized to the curriculum: no skill example at any level is trained or evaluated cut.

With the default hero's tokenizer, every level of every built-in skill fits the rows the
engine sizes (checked on problems the sizing never sampled), every reference answer fits
its skill's generation budget, a seq_len set by hand stops a skill at its last level
that fits (or is refused when not even level 1 fits), and nothing truncates silently.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from engine.evals.skill_evals import SkillEval
from engine.protocol.config import TrainConfig
from engine.run import worker as worker_module
from engine.run.server import EngineServer
from engine.run.worker import Worker
from engine.train import fit
from engine.train.chat import ChatRenderer
from engine.train.curriculum import Curriculum
from engine.train.packing import ExampleTooLong, ListSource, pack_rows
from engine.train.stream import SkillStream, Source
from skills.registry import all_skills, get_skill
from tests.conftest import make_hero

FRESH = 6  # problems per level the sizing did not see


@pytest.fixture(scope="module")
def default_tokenizer() -> PreTrainedTokenizerFast:
    from engine.model.hatchling import HatchlingSpec, build_tokenizer

    spec = HatchlingSpec()
    return build_tokenizer(spec.vocab_size, spec.pretokenizer)


@pytest.fixture(scope="module")
def sizes(default_tokenizer: PreTrainedTokenizerFast) -> list[fit.LevelSize]:
    return fit.measure(all_skills(), ChatRenderer(default_tokenizer))


def test_every_level_of_every_skill_fits_the_default_rows(default_tokenizer, sizes) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(default_tokenizer)
    seq_len = fit.resolve_rows(TrainConfig(), fit.auto_seq_len(sizes)).seq_len
    assert seq_len % fit.ROW_QUANTUM == 0
    levels = 0
    for skill in all_skills():
        for level in range(1, skill.max_level + 1):
            for i in range(FRESH):
                problem = skill.generate(level, 10**7 + i, split="train")  # not sampled by measure
                assert len(renderer.render(problem.training_messages())) <= seq_len, (skill.id, level)
                eval_problem = skill.generate(level, i, split="eval")
                assert len(renderer.render(eval_problem.training_messages())) <= seq_len, (skill.id, level)
            levels += 1
    assert levels == sum(s.max_level for s in all_skills()) and levels >= 85
    assert fit.level_caps(sizes, seq_len) == {s.id: s.max_level for s in all_skills()}


def test_every_reference_answer_fits_its_skills_generation_budget(default_tokenizer, sizes) -> None:  # type: ignore[no-untyped-def]
    budgets = {s.id: s.spec.max_answer_tokens for s in all_skills()}
    assert fit.answer_overruns(sizes, budgets) == []
    # and the check can fail: the old BIN budget of 64 tokens cut answers from L7 on
    overruns = fit.answer_overruns(sizes, {**budgets, "bin": 64})
    assert overruns and {s.skill for s in overruns} == {"bin"} and min(s.level for s in overruns) <= 8


def test_level_caps_stop_at_the_first_level_that_does_not_fit() -> None:
    sizes = [fit.LevelSize("sy", lvl, n, 1) for lvl, n in ((1, 100), (2, 120), (3, 300), (4, 110))]
    sizes += [fit.LevelSize("bin", 1, 500, 1)]
    assert fit.level_caps(sizes, 256) == {"sy": 2, "bin": 0}  # L4 fits, but L3 is in the way
    assert fit.level_caps(sizes, 512) == {"sy": 4, "bin": 1}
    assert fit.auto_seq_len(sizes) == 576  # 500 × 1.05, up to a multiple of 64
    assert fit.auto_seq_len(sizes, max_positions=512) == 512
    auto = fit.resolve_rows(TrainConfig(), 640)
    assert (auto.seq_len, auto.micro_batch) == (640, 3)  # about 2,048 tokens a pass
    assert fit.resolve_rows(TrainConfig(micro_batch=5), 640).micro_batch == 5  # by hand stays


def test_packing_refuses_to_cut_an_example(default_tokenizer) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(default_tokenizer)
    example = renderer.render(get_skill("sy").generate(1, 0).training_messages())
    whole = pack_rows(ListSource([example]), rows=None, seq_len=len(example), pad_id=0)
    assert whole.real_tokens == len(example)
    with pytest.raises(ExampleTooLong, match=f"{len(example)} tokens"):
        pack_rows(ListSource([example]), rows=None, seq_len=len(example) - 1, pad_id=0)


def test_the_stream_draws_again_instead_of_cutting(default_tokenizer) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(default_tokenizer)
    sy = get_skill("sy")
    lengths = sorted(len(renderer.render(sy.generate(6, i).training_messages())) for i in range(40))
    limit = lengths[len(lengths) // 2]  # about half of the L6 problems are longer than this
    stream = SkillStream([Source(sy, 6)], renderer, seed=3, max_tokens=limit)
    drawn = [stream.next() for _ in range(20)]
    assert all(len(x) <= limit for x in drawn)
    assert stream.redrawn > 0
    again = SkillStream([Source(sy, 6)], renderer, seed=3, max_tokens=limit)
    assert [again.next().input_ids for _ in range(20)] == [x.input_ids for x in drawn]  # resumable
    with pytest.raises(ValueError, match=r"raise train\.seq_len"):
        SkillStream([Source(sy, 6)], renderer, seed=3, max_tokens=10).next()


def test_a_capped_skill_does_not_level_past_its_cap() -> None:
    bin_skill = get_skill("bin")
    cur = Curriculum([bin_skill], {"bin": 1.0}, rehearsal=0.2, caps={"bin": 1})
    for step in range(5):
        assert cur.record_eval("bin", 1.0, step) is None
    assert cur.tracks["bin"].level == 1
    free = Curriculum([bin_skill], {"bin": 1.0}, rehearsal=0.2)
    assert [free.record_eval("bin", 1.0, s) for s in range(3)] == [None, None, 2]


def test_the_engine_sizes_rows_caps_levels_and_refuses_rows_too_short(
    tmp_path: Path, hatchling_dir: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    save, config = make_hero(tmp_path / "auto", hatchling_dir)
    auto = replace(config, train=replace(config.train, seq_len=0, micro_batch=0))
    worker = Worker(save, auto, EngineServer())
    worker.start()
    longest = max(s.longest for s in fit.cached_measure([get_skill("bin")], worker.renderer, None))
    assert worker.config.train.seq_len >= longest and worker.config.train.micro_batch >= 1
    assert worker.stream.max_tokens == worker.config.train.seq_len
    assert worker.curriculum.caps == {"bin": get_skill("bin").max_level}
    cached = json.loads(save.row_sizes.read_text())
    assert len(cached["levels"]) == get_skill("bin").max_level
    worker.keeper.stop()

    save, config = make_hero(tmp_path / "short", hatchling_dir)  # the fast test rows: 128 tokens
    worker = Worker(save, config, EngineServer())
    worker.start()
    cap = worker.curriculum.caps["bin"]
    assert 1 <= cap < get_skill("bin").max_level
    assert not worker.warnings  # said in the log now; a warning when DIO gets there
    worker.curriculum.tracks["bin"].level = cap
    worker.curriculum.tracks["bin"].evals = [1.0, 1.0]
    monkeypatch.setattr(worker_module, "score_answers", lambda *a: SkillEval(1.0, 4, None, "", True))
    worker.run_eval()  # the third pass: the gate opens, but L{cap + 1} does not fit
    assert worker.curriculum.tracks["bin"].level == cap
    assert any(f"BIN stops at L{cap}" in w and "train.seq_len" in w for w in worker.warnings)
    worker.keeper.stop()

    save, config = make_hero(tmp_path / "tiny", hatchling_dir)
    tiny = replace(config, train=replace(config.train, seq_len=16))
    with pytest.raises(fit.RowsTooShort, match="cannot hold BIN L1 examples"):
        Worker(save, tiny, EngineServer()).start()


def test_row_sizes_are_cached_until_the_skills_or_tokenizer_change(
    tmp_path: Path, default_tokenizer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    renderer = ChatRenderer(default_tokenizer)
    cache = tmp_path / "row-sizes.json"
    skills = [get_skill("ari")]
    first = fit.cached_measure(skills, renderer, cache, samples=2)
    monkeypatch.setattr(fit, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert fit.cached_measure(skills, renderer, cache, samples=2) == first
    monkeypatch.undo()
    changed = fit.cached_measure([get_skill("ari"), get_skill("bin")], renderer, cache, samples=2)
    assert {s.skill for s in changed} == {"ari", "bin"}
    cache.write_text("{not json")
    assert fit.cached_measure(skills, renderer, cache, samples=2) == first  # a broken cache is remeasured
