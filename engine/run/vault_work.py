"""What the worker does for the Vault and the Oracle, between two training steps:
answer a question (streamed), evaluate a loot's own weights, compare two loot, rewind.

Every piece of it runs on the worker thread, so training simply waits while DIO
answers; while paused, the loop still reads commands, so all of it works paused.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from engine.evals.skill_evals import answer_batches, validation_loss
from engine.model.hero import base_folder
from engine.oracle.chat import (
    OracleError,
    Settings,
    generate,
    load_base,
    load_copy,
    optimizer_hash,
    swap_in,
    swap_out,
    turns_to_messages,
    weights_hash,
)
from engine.protocol import messages as p
from engine.run.server import ClientSession
from engine.run.tasks import TaskBody
from engine.store import commands as vault_commands
from engine.store.commands import VaultError
from engine.store.vault import main_line

if TYPE_CHECKING:
    from engine.run.worker import Worker

log = logging.getLogger("engine.run.vault_work")
LIVE = ("", "live", "now")


@contextmanager
def weights_of(w: Worker, loot: str | None) -> Iterator[tuple[Any, str, int, str, str]]:
    """(model, weights hash, step, placement, name) for a loot, or the live weights; strict:
    an unknown loot raises OracleError naming those that exist."""
    if loot is None or loot.strip().lower() in LIVE:
        yield w.hero.model, weights_hash(w.hero.model), w.progress.step, "live", "live"
        return
    if loot.strip().lower() == "base":  # the model before any training
        base = base_folder(w.config, w.save)
        model, digest = w.loot_copies.get("base", lambda: load_base(base, w.hero.device))
        yield model, digest, 0, "beside", "base"
        return
    try:
        row = w.vault.find(loot)
    except KeyError as exc:
        raise OracleError(exc.args[0]) from None
    folder = w.vault.folder / row["name"]
    where = placement(w, folder)
    if where == "beside":
        base = base_folder(w.config, w.save)
        model, digest = w.loot_copies.get(
            row["name"], lambda: load_copy(folder, w.config, base, w.hero.device)
        )
        yield model, digest, row["step"], "beside", row["name"]
        return
    if not w.paused:
        raise OracleError(
            "this GPU has no room for a second copy: pause training (space) and ask again; "
            "the loot's weights are then swapped in and back"
        )
    model = w.hero.model
    before = weights_hash(model), optimizer_hash(w.trainer.optimizer)
    backup = swap_in(model, folder, w.config.mode)
    try:
        yield model, weights_hash(model), row["step"], "swap", row["name"]
    finally:
        swap_out(model, backup, w.config.mode)
        after = weights_hash(model), optimizer_hash(w.trainer.optimizer)
        if after != before:  # never train on weights that are not the run's own
            raise RuntimeError(f"the training weights did not come back bit for bit ({before} → {after})")
        log.info("swapped %s in and out; training state checked identical (%s)", row["name"], before[0])


def placement(w: Worker, folder: Any) -> str:
    chosen = w.config.oracle.placement
    if chosen != "auto":
        return chosen
    device = w.hero.device
    if device.type != "cuda":
        return "beside"
    need = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    if w.config.mode != "full":
        need += sum(f.stat().st_size for f in base_folder(w.config, w.save).glob("*.safetensors"))
    free, _total = torch.cuda.mem_get_info(device)
    return "beside" if free > need * 1.3 + 512 * 2**20 else "swap"


def answer(w: Worker, client: ClientSession, ask: p.Ask) -> None:
    """Queue the question first on the task board: it runs at the next slice, even in
    the middle of an eval, and while paused."""
    label = f"answer from {ask.loot or 'the live weights'}"
    w.tasks.add("ask", label, answer_task(w, client, ask), asked=True, first=True)


def answer_task(w: Worker, client: ClientSession, ask: p.Ask) -> TaskBody:
    settings = Settings(
        temperature=ask.temperature,
        top_p=ask.top_p,
        max_new_tokens=ask.max_new_tokens or w.config.oracle.max_new_tokens,
        seed=ask.seed,
    )

    def sink(text: str) -> None:
        client.send(p.OracleToken(ask.request_id, text))

    try:
        with weights_of(w, ask.loot) as (model, digest, step, where, name):
            reply = generate(model, w.renderer, turns_to_messages(ask.turns), settings, w.hero.device, sink)
    except OracleError as exc:
        client.send(p.CommandRejected("Ask", str(exc)))
        return f"refused: {exc}"
    log.info("the Oracle answered from %s (step %d, weights %s, %s)", name, step, digest, where)
    client.send(
        p.OracleAnswered(
            ask.request_id,
            name,
            step,
            digest,
            reply.text,
            reply.new_tokens,
            reply.seconds,
            reply.first_token_s,
            where,
        )
    )
    return f"{reply.new_tokens} tokens from {name} (step {step})"
    yield 0, 1  # unreachable: it makes this a generator, a task of one slice


def vault_command(w: Worker, client: ClientSession, command: p.VaultCommand | p.Ask) -> None:
    if isinstance(command, p.Ask):
        answer(w, client, command)
        return
    try:
        if isinstance(command, (p.EvalLoot, p.CompareLoot)):
            schedule(w, client, command)  # the reply comes when the task is done
            return
        if isinstance(command, p.RewindTo):
            message = rewind(w, command.name)
        else:
            message = vault_commands.carry_out(w.vault, w.config.vault, command)
    except (VaultError, OracleError, OSError) as exc:
        client.send(p.VaultReply(False, str(exc)))
        return
    if message:
        w.note(message, kind="loot")
    listing = vault_commands.listed(w.vault, w.config.vault)
    if isinstance(command, p.ListLoot):
        client.send(listing)
    else:
        client.send(p.VaultReply(True, message))
        w.server.broadcast(listing)


def schedule(w: Worker, client: ClientSession, command: p.EvalLoot | p.CompareLoot) -> None:
    """Loot evals and compares go on the task board (a batch per slice)."""
    body: Generator[tuple[int, int], None, Any]
    if isinstance(command, p.EvalLoot):
        name = vault_commands.find(w.vault, command.name)["name"]
        body, kind, label = eval_loot(w, name), "loot-eval", f"eval of {name}"
    else:
        a, b = (vault_commands.find(w.vault, n)["name"] for n in (command.a, command.b))
        body, kind, label = compare(w, a, b), "compare", f"compare {a} with {b}"
    w.tasks.add(kind, label, reply_when_done(w, client, body), asked=True)


def reply_when_done(
    w: Worker, client: ClientSession, body: Generator[tuple[int, int], None, Any]
) -> TaskBody:
    try:
        result = yield from body
    except (VaultError, OracleError, OSError) as exc:
        client.send(p.VaultReply(False, str(exc)))
        return f"failed: {exc}"
    if isinstance(result, p.LootCompared):
        client.send(result)
        message = f"compared {result.a} with {result.b}"
    else:
        message = str(result)
        w.note(message, kind="loot")
    client.send(p.VaultReply(True, message))
    w.server.broadcast(vault_commands.listed(w.vault, w.config.vault))
    return message


def problems_total(w: Worker) -> int:
    return sum(len(problems) for problems in w.eval_sets.values())


def eval_set_answers(
    w: Worker, model: Any, done: int, total: int
) -> Generator[tuple[int, int], None, dict[str, list[str]]]:
    """``model``'s greedy answers to every skill's eval set, a batch per slice."""
    answers: dict[str, list[str]] = {}
    for skill_id, problems in w.eval_sets.items():
        skill = w.curriculum.skills[skill_id]
        answers[skill_id] = []
        for batch in answer_batches(model, w.renderer, problems, w.hero.device, skill.spec.max_answer_tokens):
            answers[skill_id] += batch
            done += len(batch)
            yield done, total
    return answers


def eval_loot(w: Worker, name: str) -> TaskBody:
    """A loot's own weights on every skill's eval set at its current level, and on the
    validation batch; the scores go into the loot's ledger row."""
    row = vault_commands.find(w.vault, name)
    total = problems_total(w)
    with weights_of(w, row["name"]) as (model, _digest, _step, _where, _name):
        val_loss = validation_loss(model, w.val_batch, w.hero.device)
        yield 0, total
        answers = yield from eval_set_answers(w, model, 0, total)
    results: dict[str, dict[str, Any]] = {}
    for skill_id, problems in w.eval_sets.items():
        skill = w.curriculum.skills[skill_id]
        scores = [skill.score(q, a) for q, a in zip(problems, answers[skill_id], strict=True)]
        results[skill_id] = {
            "accuracy": sum(scores) / max(1, len(scores)),
            "level": w.curriculum.tracks[skill_id].level,
            "problems": len(problems),
            "step": w.progress.step,
        }
    w.vault.ledger.update_loot(row["name"], {"evals": results, "val_loss": val_loss})
    summary = ", ".join(f"{k} {v['accuracy']:.0%} (L{v['level']})" for k, v in results.items())
    return f"{row['name']} evaluated: val loss {val_loss:.3f}, {summary}"


def compare(w: Worker, a: str, b: str) -> Generator[tuple[int, int], None, p.LootCompared]:
    rows = [vault_commands.find(w.vault, a), vault_commands.find(w.vault, b)]
    right: list[dict[tuple[str, int], bool]] = []
    said: list[dict[tuple[str, int], str]] = []
    total = 2 * problems_total(w)
    for index, row in enumerate(rows):
        with weights_of(w, row["name"]) as (model, _digest, _step, _where, _name):
            answers = yield from eval_set_answers(w, model, index * total // 2, total)
        marks: dict[tuple[str, int], bool] = {}
        replies: dict[tuple[str, int], str] = {}
        for skill_id, problems in w.eval_sets.items():
            skill = w.curriculum.skills[skill_id]
            for i, (q, ans) in enumerate(zip(problems, answers[skill_id], strict=True)):
                marks[(skill_id, i)] = skill.score(q, ans) >= 1.0
                replies[(skill_id, i)] = ans
        right.append(marks)
        said.append(replies)
    diffs = []
    for skill_id, problems in w.eval_sets.items():
        level = w.curriculum.tracks[skill_id].level
        for i, q in enumerate(problems):
            prompt = q.messages()[-1]["content"]
            key = (skill_id, i)
            diffs.append(
                p.ProblemDiff(
                    skill_id,
                    level,
                    prompt,
                    right[0][key],
                    right[1][key],
                    q.answer,
                    said[0][key],
                    said[1][key],
                )
            )
    metrics: list[tuple[str, float | None, float | None]] = [
        ("step", rows[0]["step"], rows[1]["step"]),
        ("train_loss", rows[0].get("train_loss"), rows[1].get("train_loss")),
        ("val_loss", rows[0].get("val_loss"), rows[1].get("val_loss")),
    ]
    for skill_id in w.eval_sets:
        share = [sum(m[(skill_id, i)] for i in range(len(w.eval_sets[skill_id]))) for m in right]
        n = max(1, len(w.eval_sets[skill_id]))
        metrics.append((f"{skill_id} now", share[0] / n, share[1] / n))
    return p.LootCompared(rows[0]["name"], rows[1]["name"], tuple(metrics), tuple(diffs))


def rewind(w: Worker, name: str) -> str:
    """Save where training is (nothing is lost), set newer loot aside, and restart the
    worker from the loot (main.py's loop builds a fresh one)."""
    row = vault_commands.find(w.vault, name)
    if w.progress.step != row["step"]:
        live = main_line(w.ledger.live_loot())
        if not live or live[-1]["step"] != w.progress.step:
            w.take_loot("rewind", prune=False)  # the policy must not take the target first
    message = vault_commands.carry_out(w.vault, w.config.vault, p.RewindTo(row["name"]))
    w.loot_copies.models.clear()
    w.stop_reason = "rewind"
    return message
