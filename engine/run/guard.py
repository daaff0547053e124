"""The watchdog's hands in the worker (the rules are in ``engine/train/watchdog.py``).

A skipped spike is recorded and training goes on. A rollback goes back to the newest loot
before this step (through the Vault's rewind: the current weights are saved first and set
aside, nothing is lost), with the learning rate × ``lr_factor`` and the data reshuffled;
the new state is written to ``watchdog.json`` before the rewind, so an engine killed
right after still resumes with it. Past ``max_interventions`` rollbacks in
``intervention_window`` steps, DIO pauses and says what happened and what to do.
Every intervention is an event, a log line and a ledger row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.protocol import messages as p
from engine.store.atomic import read_json_kept, write_json
from engine.store.vault import main_line
from engine.train.trainer import Judge, StepResult
from engine.train.watchdog import ROLLBACK, SEED_NOTCH, SKIP, Verdict, Watchdog, overfitting

# From GradScaler's 65,536, 30 halvings in a row reach 6e-5: no sane model needs a scale that low.
FP16_OVERFLOWS_GIVE_UP = 30

if TYPE_CHECKING:
    from engine.run.worker import Worker


def judge_for(w: Worker) -> Judge:
    return lambda loss, grad_norm: w.watchdog.judge(w.progress.step + 1, loss, grad_norm)


def start(w: Worker, resume_meta: dict[str, Any] | None, resume_name: str | None) -> None:
    """The watchdog a (re)started worker continues with: the loot's, or the state a
    rollback to that very loot left in watchdog.json (newer than the loot)."""
    state = (resume_meta or {}).get("watchdog")
    pending, warning = read_json_kept(w.save.watchdog)
    if warning:  # the loot's own watchdog state stands in
        w.warn(warning)
    if isinstance(pending, dict) and resume_name is not None and pending.get("after") == resume_name:
        state = pending.get("state")
    w.watchdog = Watchdog.from_dict(w.config.watchdog, state)
    apply(w)


def apply(w: Worker) -> None:
    """The learning-rate scale and data seed the watchdog's state asks for."""
    if w.watchdog.lr_scale != 1.0:
        w.trainer.set_lr_scale(w.watchdog.lr_scale)
    w.stream.seed = w.config.train.seed + SEED_NOTCH * w.watchdog.seed_shift


def after_step(w: Worker, result: StepResult) -> None:
    """Act on the watchdog's verdict about the step just counted."""
    if fp16_gave_up(w, result):
        return
    verdict = result.verdict
    if verdict is None:
        return
    if verdict.action == SKIP:
        record(w, "skip", f"step {w.progress.step:,} skipped: {verdict.reason}", verdict)
    elif verdict.action == ROLLBACK:
        roll_back(w, verdict)


def fp16_gave_up(w: Worker, result: StepResult) -> bool:
    """fp16's loss scale halves at each overflow: a few early ones are the scale being found,
    but a run of them means the model's values do not fit fp16 at all (every step skipped,
    nothing learned, forever). Then DIO pauses and says so."""
    w.overflows_in_a_row = w.overflows_in_a_row + 1 if result.overflow else 0
    if w.overflows_in_a_row < FP16_OVERFLOWS_GIVE_UP:
        return False
    w.overflows_in_a_row = 0
    reason = (
        f"fp16 gradients overflowed {FP16_OVERFLOWS_GIVE_UP} steps in a row "
        f"(loss scale now {w.trainer.loss_scale():.3g})"
    )
    pause(
        w,
        f"{w.config.name.upper()} paused at step {w.progress.step:,}: {reason}; nothing was learned in those "
        "steps. This model does not train in fp16 here: `realm config set train.precision fp32` (or bf16 "
        "on a GPU that has it) and start again. Space goes on trying.",
        Verdict(SKIP, reason),
    )
    return True


def pause(w: Worker, text: str, verdict: Verdict) -> None:
    """The watchdog stops DIO until the player says go on: recorded, said, paused."""
    record(w, "pause", text, verdict)
    w.set_paused(True)
    w.server.broadcast(p.Paused(w.progress.step))


def roll_back(w: Worker, verdict: Verdict) -> None:
    from engine.run import vault_work

    step = w.progress.step
    # The current line only: loot an earlier rollback set aside (step-…-rN) is never resumed from
    older = [row for row in main_line(w.ledger.live_loot()) if row["step"] < step]
    if not w.watchdog.may_roll_back(step) or not older:
        done = w.watchdog.rollbacks_in_window(step)
        why = (
            f"{done} rollback{'' if done == 1 else 's'} in the last "
            f"{w.config.watchdog.intervention_window:,} steps already"
            if older
            else "there is no earlier loot to go back to"
        )
        pause(
            w,
            f"{w.config.name.upper()} paused at step {step:,}: {verdict.reason}, and {why}. The learning rate is at "
            f"×{w.watchdog.lr_scale:g} of train.lr. Press space to go on as is, rewind to a loot in "
            f"the Vault (v), or lower train.lr in the hero's config.json and restart.",
            verdict,
        )
        return
    target = older[-1]["name"]
    w.watchdog.rolled_back(step)
    # Durable before the rewind: a kill -9 between the two still resumes with it.
    write_json(w.save.watchdog, {"after": target, "state": w.watchdog.to_dict()})
    record(
        w,
        "rollback",
        f"{w.config.name.upper()} rolls back from step {step:,} to {target}: {verdict.reason}. Learning rate "
        f"×{w.config.watchdog.lr_factor:g} (now ×{w.watchdog.lr_scale:g}), data reshuffled",
        verdict,
        loot=target,
    )
    vault_work.rewind(w, target)


def record(w: Worker, kind: str, text: str, verdict: Verdict, loot: str = "") -> None:
    step = w.progress.step
    if kind == "skip":
        w.note(text, kind="watchdog")  # routine: the log and the screen's event list, no toast
    else:
        w.warn(text, "watchdog")
    w.ledger.record_intervention(
        {"step": step, "kind": kind, "reason": verdict.reason, "lr_scale": w.watchdog.lr_scale, "loot": loot}
    )
    w.server.broadcast(p.WatchdogIntervened(step, kind, verdict.reason, w.watchdog.lr_scale, loot))


def after_eval(w: Worker, step: int, val_loss: float) -> None:
    """Watch the train/val gap on one validation set (a level-up starts a new one)."""
    levels = tuple(sorted((sid, t.level) for sid, t in w.curriculum.tracks.items()))
    if levels != w.val_levels:
        w.val_levels, w.val_watch, w.overfit_told = levels, [], False
    train = w.progress.smoothed_loss
    if train is None:
        return
    w.val_watch.append((step, train, val_loss))
    text = overfitting(w.val_watch, w.config.watchdog.overfit_evals)
    if text and not w.overfit_told:  # once per validation set, not at every eval after
        w.overfit_told = True
        w.warn(f"Watchdog: {text}", "watchdog")
        w.ledger.record_intervention(
            {"step": step, "kind": "overfitting", "reason": text, "lr_scale": w.watchdog.lr_scale, "loot": ""}
        )
        w.server.broadcast(p.WatchdogIntervened(step, "overfitting", text, w.watchdog.lr_scale))
