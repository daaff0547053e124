"""`realm status` (how the hero is doing, engine up or down) and `realm stop`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import Any

from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir, ended_without_stopping
from tui.cli.common import add_hero_args, at_least, save_from
from tui.link import EngineControl


def add_parsers(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="is DIO training? step, loss, level, last loot",
        description="Report the hero's state without opening the game.",
    )
    add_hero_args(status)
    status.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (state, step, loss, level, last_loot_step, pid, …)",
    )
    status.set_defaults(run=cmd_status)

    stop = sub.add_parser(
        "stop",
        help="save loot and stop DIO's engine",
        description="Ask the running engine to save a checkpoint and stop, and wait for it.",
    )
    add_hero_args(stop)
    stop.add_argument("--timeout", type=at_least(0, float), default=300, help="seconds to wait (default 300)")
    stop.set_defaults(run=cmd_stop)


def from_loot_folders(save: SaveDir) -> dict[str, Any]:
    """What the loot folders say when hero.json is missing or unreadable (the engine
    writes it anew at its next start, resuming from the newest loot)."""
    steps = save.loot_steps_on_disk()
    if not steps:
        return {}
    return {
        "step": steps[-1],
        "last_loot_step": steps[-1],
        "loot": len(steps),
        "warnings": ["hero.json is missing or unreadable: step and loot read from the loot folders"],
    }


def life_state(status: dict[str, Any], pid: int | None) -> str:
    """training | paused | stopping | stopped | crashed. An engine that is gone without
    saying "stopped" (kill -9, an error, a power cut) crashed."""
    last = status.get("state")
    if pid:
        return "training" if last in (None, "starting", "stopped", "crashed") else str(last)
    return "crashed" if ended_without_stopping(last) else "stopped"


def status_record(save: SaveDir) -> dict[str, Any]:
    status = save.read_status() or from_loot_folders(save)
    pid = save.engine_pid()
    state = life_state(status, pid)
    record = {
        "hero": save.name,
        "state": state,
        "step": status.get("step", 0),
        "loss": status.get("loss"),
        "val_loss": status.get("val_loss"),
        "acc": status.get("acc"),
        "level": status.get("level", 0),
        "gold": status.get("gold", 0),
        "last_loot_step": status.get("last_loot_step"),
        "loot": status.get("loot", 0),
        "pid": pid,
        "model": status.get("model") or save.read_config().get("model") or "hatchling",
        "device": status.get("device"),
        "ranks": status.get("ranks", 1),
        "sharded": bool(status.get("sharded")),
        "tokens_per_s": status.get("tokens_per_s") if pid else 0.0,
        "updated_at": status.get("updated_at"),
        "skills": status.get("skills", {}),
        "quest": status.get("quest") if pid else None,  # the active quest's progress
        "memory_plan": status.get("memory_plan", ""),
        "gpu": status.get("gpu") if pid else None,
        "save_dir": str(save.root),
        "warnings": status.get("warnings", []),
        "grade": status.get("grade"),  # the run grade with its components, or None before one
        "task": status.get("task") if pid else None,  # the task running now ("eval" 12/70…)
        "tasks": status.get("tasks", []),  # the task board as last reported: finished, queued, running
        "campaign": status.get("campaign"),  # the campaign map (phases, current, gate), or None
    }
    if state == "crashed":
        record["error"] = status.get("error")
        record["refused"] = bool(status.get("refused"))  # it would not start: something to change
        record["died_at_step"] = max(int(status.get("step") or 0), save.last_logged_step())
    return record


def no_hero(save: SaveDir) -> str:
    return f"no hero {save.name!r} in {save.root.parent}"


def cmd_status(args: argparse.Namespace) -> int:
    save = save_from(args)
    if not save.config.exists():
        if args.json:
            print(json.dumps({"hero": save.name, "state": "stopped", "step": 0, "exists": False}))
        print(
            f"realm: {no_hero(save)} (`realm play --hero {shlex.quote(save.name)}` hatches one)",
            file=sys.stderr,
        )
        return 1
    rec = status_record(save)
    if args.json:
        print(json.dumps(rec))
    else:
        print_status(save, rec)
    return 0


def print_tasks(rec: dict[str, Any]) -> None:
    """The task running now and how many wait (the whole board is in --json)."""
    task = rec.get("task")
    if task:
        print(f"  {task['kind']}: {task['label']} {task['done']}/{task['total']}")
    queued = sum(1 for t in rec.get("tasks") or [] if t.get("state") == "queued")
    if queued and rec["pid"]:
        print(f"  {counted(queued, 'task')} queued (the task board: t in the game)")


def print_campaign(campaign: dict[str, Any] | None) -> None:
    if not campaign:
        return
    phases = campaign["phases"]
    if campaign["finished"]:
        print(f"  campaign {campaign['name']}: complete ({len(phases)} phases)")
        return
    phase = phases[campaign["current"]]
    gate = f": {phase['gate']}" if phase.get("gate") else ""
    print(
        f"  campaign {campaign['name']}: phase {campaign['current'] + 1}/{len(phases)} {phase['name']}{gate}"
    )


def print_status(save: SaveDir, rec: dict[str, Any]) -> None:
    loss = f"{rec['loss']:.4f}" if rec["loss"] is not None else "--"
    who = f"{save.name.upper()} ({rec['model']})"
    running = f", pid {rec['pid']}" if rec["pid"] else ""
    if rec["state"] == "crashed":
        loot = rec["last_loot_step"]
        how = "would not start" if rec.get("refused") else "crashed"
        print(
            f"{who}: {how} at step {rec['died_at_step']:,} (last loot {loot if loot is not None else 'none'})"
        )
    else:
        print(f"{who}: {rec['state']}{running}")
    print(f"  step {rec['step']:,} · level {rec['level']} · loss {loss} · gold {rec['gold']}")
    grade = rec.get("grade")
    if grade:
        print(f"  grade {grade['letter']} ({grade['score']}/100)")
        for part in grade["parts"]:
            print(f"    {part['name']} {part['points']}/{part['out_of']}: {part['why']}")
    for skill_id, track in (rec.get("skills") or {}).items():
        print(f"  {skill_id.upper()} level {track['level']} (evals at this level: {len(track['evals'])})")
    print_tasks(rec)
    print_campaign(rec.get("campaign"))
    quest = rec.get("quest")
    if quest:
        total = quest["rows"] * quest["epochs"]
        print(
            f"  quest {quest['name']}: {quest['seen']:,}/{total:,} rows ({counted(quest['epochs'], 'epoch')})"
        )
    if rec["pid"]:
        ranks = (
            f" × {rec['ranks']} ranks" + (", sharded (FSDP)" if rec["sharded"] else "")
            if rec["ranks"] > 1
            else ""
        )
        print(f"  {rec['tokens_per_s'] or 0:,.0f} tok/s on {rec['device']}{ranks}")
        if rec["memory_plan"]:
            print(f"  memory: {rec['memory_plan']}")
    if rec["last_loot_step"] is not None:
        age = ""
        if rec["updated_at"]:
            age = f" (status {time.time() - rec['updated_at']:.0f}s old)"
        print(f"  last loot at step {rec['last_loot_step']:,}; {rec['loot']} in the vault{age}")
    else:
        print("  no loot yet")
    if rec["state"] == "crashed":
        print(f"  {why_it_stopped(save, rec)}")
    for warning in rec["warnings"]:
        print(f"  ! {warning}")


def why_it_stopped(save: SaveDir, rec: dict[str, Any]) -> str:
    """A crashed record's reason: a start refused (a setting, the model folder: something
    to change) or a death (`realm play` resumes from the last loot)."""
    if rec.get("refused"):
        return f"the engine would not start: {rec.get('error')}; change that and start it again"
    why = rec.get("error") or "it was killed or lost power"
    return f"the engine died: {why} (see {save.log}); `realm play` resumes from the last loot"


def cmd_stop(args: argparse.Namespace) -> int:
    save = save_from(args)
    if not save.config.exists():
        print(f"realm: {no_hero(save)}", file=sys.stderr)
        return 1
    pid = save.engine_pid()
    if pid is None:
        print(f"{save.name.upper()} is not training; nothing to stop.")
        return 0
    print(f"Saving loot and stopping {save.name.upper()} (pid {pid})…", end="", flush=True)
    try:
        EngineControl(save).stop(timeout=args.timeout, on_wait=lambda: print(".", end="", flush=True))
    except TimeoutError as exc:
        print(f"\nrealm: {exc}", file=sys.stderr)
        return 1
    status = save.read_status()
    print(
        f" done. Rests at step {status.get('step', 0):,}, last loot at step {status.get('last_loot_step')}."
    )
    return 0
