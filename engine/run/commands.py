"""Commands from the game and the CLI, carried out by the worker between two steps.

``handle`` is the one dispatcher: it matches every command the protocol defines and
ends in ``assert_never``, so a new command nobody handles is a type error.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from typing_extensions import assert_never

from engine.protocol import messages as p
from engine.run import campaign_work, logbook, report, settings_work, suite_work, vault_work
from engine.run.server import ClientLeft, ClientSession
from engine.store.vault import main_line

if TYPE_CHECKING:
    from engine.run.worker import Worker


def handle(w: Worker, client: ClientSession, command: p.Command | ClientLeft) -> None:
    if isinstance(command, (ClientLeft, p.Goodbye)):
        client_leaving(w, client, command)
        return
    if not client.greeted and not isinstance(command, p.Hello):
        client.send(p.CommandRejected(type(command).__name__, "say Hello first"))
        return
    match command:
        case p.Hello():
            greet(w, client, command)
        case p.Pause() | p.Resume() | p.SaveNow() | p.RunEval() | p.Stop() | p.Goodbye():
            control(w, client, command)
        case p.AddQuest() | p.CancelQuest() | p.RetryQuest() | p.SetQuestPriority():
            w.keeper.command(client, command)
        case (
            p.ListLoot()
            | p.PinLoot()
            | p.DeleteLoot()
            | p.PruneLoot()
            | p.RewindTo()
            | p.EvalLoot()
            | p.CompareLoot()
            | p.Ask()
        ):
            vault_work.vault_command(w, client, command)
        case p.AddSuite() | p.ListSuites() | p.RunSuite() | p.CompareSuite() | p.Spar():
            suite_work.suite_command(w, client, command)
        case p.StartCampaign() | p.EndCampaign():
            campaign_work.command(w, client, command)
        case p.ReadLog():
            client.send(logbook.read_log(w.save, command.limit))
        case p.SetConfig():
            settings_work.command(w, client, command)
        case p.Buy() | p.Wear():
            shop_command(w, command)
        case _:
            assert_never(command)


def control(
    w: Worker, client: ClientSession, command: p.Pause | p.Resume | p.SaveNow | p.RunEval | p.Stop | p.Goodbye
) -> None:
    match command:
        case p.Pause() | p.Resume():
            pause = isinstance(command, p.Pause)
            w.set_paused(pause)
            # The loop only reads commands between steps, so by now stepping has stopped.
            w.server.broadcast(p.Paused(w.progress.step) if pause else p.Resumed(w.progress.step))
        case p.SaveNow():
            save_on_demand(w, client)
        case p.RunEval():
            eval_on_demand(w, client)
        case p.Stop():
            w.stop_reason = "stop"
        case p.Goodbye():
            pass  # handled above, with a client leaving


def save_on_demand(w: Worker, client: ClientSession) -> None:
    live = main_line(w.ledger.live_loot())
    if live and live[-1]["step"] == w.progress.step:  # `s` pressed twice: one save
        client.send(p.CommandRejected("SaveNow", f"loot {live[-1]['name']} is this step's"))
    else:
        w.take_loot("manual")


def eval_on_demand(w: Worker, client: ClientSession) -> None:
    history = w.report.val_history
    queued = any(t.kind == "eval" for t in w.tasks.queue)
    if queued or (history and history[-1][0] == w.progress.step):  # one eval per step is enough
        client.send(p.CommandRejected("RunEval", "this step is evaluated already (or on its way)"))
    else:
        w.note(f"Evaluating on demand at step {w.progress.step}")
        w.schedule_eval(asked=True)
        suite_work.schedule_all(w, None)  # and the user's suites, on the live weights


def client_leaving(w: Worker, client: ClientSession, command: ClientLeft | p.Goodbye) -> None:
    """The last watching UI left: "away" starts (one saying Goodbye still counts itself)."""
    if client.watcher and w.server.watchers() <= (0 if isinstance(command, ClientLeft) else 1):
        mark_last_watched(w)


def greet(w: Worker, client: ClientSession, hello: p.Hello) -> None:
    client.name = f"{hello.client} ({client.name})"  # names it in the log
    if hello.protocol_version != p.PROTOCOL_VERSION:
        client.send(
            p.HandshakeError(
                f"engine speaks protocol {p.PROTOCOL_VERSION}, UI speaks "
                f"{hello.protocol_version}: run `realm stop` and start again"
            )
        )
        client.flush_and_close(1.0)
        return
    if not hello.watcher:  # `realm quest`: no away summary, and "away" goes on
        client.watcher = False
        client.send(report.snapshot(w))
        client.greeted = True
        return
    away = report.away_summary(w) if w.server.watchers() == 0 else None
    client.send(report.snapshot(w, away))
    client.greeted = True
    w.last_watched = None
    w.write_status()


def shop_command(w: Worker, command: p.Buy | p.Wear) -> None:
    """The Market: every UI hears the answer (each wears the same looks)."""
    if isinstance(command, p.Buy):
        ok, message = w.shop.buy(command.ware, w.progress.gold, w.progress.step)
    else:
        ok, message = w.shop.wear(command.ware)
    if ok:
        w.note(f"Market: {message}", kind="other")
        w.write_status()
    w.server.broadcast(p.ShopReply(ok, message, w.shop.info(w.progress.gold)))


def mark_last_watched(w: Worker) -> None:
    w.last_watched = {
        "time": time.time(),
        "step": w.progress.step,
        "level": w.progress.level,
        "gold": w.progress.gold,
        "crashes": w.crashes,
        "skills": {sid: track.level for sid, track in w.curriculum.tracks.items()},
    }
    w.write_status()
