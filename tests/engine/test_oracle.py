"""The Oracle inside the engine: strict about which weights answer, streamed, and
harmless to training (the next step's loss is the one it would have been)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.protocol import messages as p
from engine.protocol.config import OracleConfig
from engine.run.server import EngineServer
from engine.run.worker import Worker
from tests.conftest import make_hero, run_engine


def ask(driver, turns: tuple[str, ...] = ("0b101 + 0b1 = ?",), **kw):  # type: ignore[no-untyped-def]
    request = p.Ask(request_id=f"q{len(driver.seen)}", turns=turns, **kw)
    return driver.request(request, (p.OracleAnswered, p.CommandRejected), 120)


def test_asking_a_loot_names_its_step_and_weights_and_streams_the_reply(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    driver, worker, thread = run_engine(*make_hero(tmp_path, hatchling_dir, max_steps=0))
    try:
        driver.hello()
        driver.send(p.SaveNow())
        first = driver.wait_for(p.CheckpointSaved, 120).loot
        driver.wait_until(lambda e: isinstance(e, p.StepCompleted) and e.step >= first.step + 3, 120)
        driver.send(p.Pause())
        driver.wait_for(p.Paused)
        old = ask(driver, loot=first.name, max_new_tokens=12)
        assert isinstance(old, p.OracleAnswered), old
        assert (old.loot, old.step, old.placement) == (first.name, first.step, "beside")
        streamed = "".join(
            e.text for e in driver.seen if isinstance(e, p.OracleToken) and e.request_id == old.request_id
        )
        assert streamed == old.text and 0 < old.new_tokens <= 12
        live = ask(driver, max_new_tokens=12)
        assert live.loot == "live" and live.step == worker.progress.step > first.step
        assert live.weights_hash != old.weights_hash  # other weights, another hash
        again = ask(driver, loot=str(first.step), max_new_tokens=12)  # "200" finds step-000200
        assert (again.weights_hash, again.text) == (old.weights_hash, old.text)  # greedy: the same
        missing = ask(driver, loot="step-999999")
        assert isinstance(missing, p.CommandRejected)
        assert "no loot 'step-999999'" in missing.reason and first.name in missing.reason
        driver.send(p.Resume())
        driver.wait_for(p.Resumed)
        while_training = ask(driver, loot=first.name, max_new_tokens=4)
        assert (
            isinstance(while_training, p.OracleAnswered) and while_training.weights_hash == old.weights_hash
        )
    finally:
        worker.request_stop("test over")
        thread.join(60)


def test_a_bad_ask_is_refused_before_it_reaches_the_engine() -> None:
    assert p.command_problem(p.Ask("x", ("hi", "hello"))) is not None  # must end on a user turn
    assert "temperature" in (p.command_problem(p.Ask("x", ("hi",), temperature=9.0)) or "")
    assert p.command_problem(p.Ask("x", ("hi",), temperature=1, top_p=0.5)) is None
    bad = p.command_from_dict({"type": "Ask", "request_id": "x", "turns": ["hi"], "max_new_tokens": 3})
    assert bad == p.Ask("x", ("hi",), max_new_tokens=3)


@pytest.mark.parametrize("placement", ["beside", "swap"])
def test_pause_ask_an_old_loot_resume_leaves_the_next_loss_identical(
    tmp_path: Path, hatchling_dir: Path, placement: str
) -> None:
    """Two workers from the same loot; one is asked (with sampling) in between."""
    save, config = make_hero(tmp_path, hatchling_dir, oracle=OracleConfig(placement=placement))
    first = Worker(save, config, EngineServer())
    first.start()
    for _ in range(4):
        first._train_step()
    first.take_loot("manual")
    for _ in range(3):
        first._train_step()
    first.take_loot("manual")  # training resumes from step 7 below, the Oracle asks step 4

    def next_loss(asked: bool) -> float:
        worker = Worker(save, replace(config), EngineServer())
        worker.start()
        if asked:
            from engine.run import vault_work

            worker.set_paused(True)
            client = _Collect()
            vault_work.answer(
                worker,
                client,  # type: ignore[arg-type]
                p.Ask("q", ("1 + 1 = ?",), loot="step-000004", temperature=0.9, max_new_tokens=8),
            )
            assert worker.tasks.run_slice(paused=True) is not None  # an asked task runs while paused
            answered = client.sent[-1]
            assert isinstance(answered, p.OracleAnswered), answered
            assert answered.placement == placement and answered.step == 4
            worker.set_paused(False)
        loss = worker._train_step().loss
        worker.ledger.close()
        return loss

    assert next_loss(asked=True) == next_loss(asked=False)


class _Collect:
    """A client session that keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, event: object) -> None:
        self.sent.append(event)


def test_serve_refuses_what_the_template_refuses_and_never_leaves_a_stream_hanging(
    tmp_path: Path, hatchling_dir: Path
) -> None:
    """A model's own template may refuse a request (Gemma's: no system turn): a 400 that
    says so, before anything streams. And whatever fails while a stream runs ends it with
    an error event: the client was left waiting forever."""
    import json
    import threading

    from engine.oracle.chat import Settings, Unrenderable
    from engine.oracle.chat_request import ChatRequest
    from engine.oracle.serve import stream
    from engine.oracle.shelf import ShelfOracle

    save, _config = make_hero(tmp_path, hatchling_dir)
    tokenizer_config = save.base_model / "tokenizer_config.json"
    data = json.loads(tokenizer_config.read_text())
    data["chat_template"] = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer_config.write_text(json.dumps(data))
    (save.base_model / "chat_template.jinja").unlink(missing_ok=True)
    oracle = ShelfOracle(save)
    assert oracle.room_for_reply([{"role": "user", "content": "hi"}], 8) == 8
    with pytest.raises(Unrenderable, match="System role not supported"):
        oracle.room_for_reply(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}], 8
        )

    class Broken:
        def ask(self, *_args: object) -> None:
            raise RuntimeError("the loot's weights are torn")

    asked = ChatRequest("dio", [{"role": "user", "content": "hi"}], Settings(), stream=True)
    events: list[str] = []
    reader = threading.Thread(
        target=lambda: events.extend(stream(Broken(), "latest", asked, "dio@latest", "c-1")), daemon=True
    )
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "the stream never ended"
    assert events[-1] == "data: [DONE]\n\n"
    assert "the loot's weights are torn" in events[-2] and '"error"' in events[-2]
