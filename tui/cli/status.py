"""`realm status` (how the hero is doing, engine up or down) and `realm stop`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, save_from
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
    stop.add_argument("--timeout", type=float, default=300, help="seconds to wait (default 300)")
    stop.set_defaults(run=cmd_stop)


def status_record(save: SaveDir) -> dict[str, Any]:
    status = save.read_status()
    pid = save.engine_pid()
    state = status.get("state", "stopped") if pid else "stopped"
    if pid and state in ("starting", "stopped", "crashed"):
        state = "training"  # alive but has not written its first status yet
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
        "tokens_per_s": status.get("tokens_per_s") if pid else 0.0,
        "updated_at": status.get("updated_at"),
        "skills": status.get("skills", {}),
        "quest": status.get("quest") if pid else None,  # the active quest's progress
        "memory_plan": status.get("memory_plan", ""),
        "gpu": status.get("gpu") if pid else None,
        "save_dir": str(save.root),
    }
    if not pid and status.get("state") == "crashed":
        record["error"] = status.get("error")
    return record


def cmd_status(args: argparse.Namespace) -> int:
    save = save_from(args)
    if not save.root.exists():
        if args.json:
            print(
                json.dumps(
                    {
                        "hero": save.name,
                        "state": "stopped",
                        "step": 0,
                        "loss": None,
                        "level": 0,
                        "last_loot_step": None,
                        "pid": None,
                        "exists": False,
                    }
                )
            )
            return 0
        print(f"No hero {save.name!r} in {save.root.parent} yet. `realm play` hatches one.")
        return 0
    rec = status_record(save)
    if args.json:
        print(json.dumps(rec))
        return 0
    loss = f"{rec['loss']:.4f}" if rec["loss"] is not None else "--"
    who = f"{save.name.upper()} ({rec['model']})"
    running = f", pid {rec['pid']}" if rec["pid"] else ""
    print(f"{who}: {rec['state']}{running}")
    print(f"  step {rec['step']:,} · level {rec['level']} · loss {loss} · gold {rec['gold']}")
    for skill_id, track in (rec.get("skills") or {}).items():
        print(f"  {skill_id.upper()} level {track['level']} (evals at this level: {len(track['evals'])})")
    quest = rec.get("quest")
    if quest:
        total = quest["rows"] * quest["epochs"]
        print(f"  quest {quest['name']}: {quest['seen']:,}/{total:,} rows ({quest['epochs']} epoch(s))")
    if rec["pid"]:
        print(f"  {rec['tokens_per_s'] or 0:,.0f} tok/s on {rec['device']}")
        if rec["memory_plan"]:
            print(f"  memory: {rec['memory_plan']}")
    if rec["last_loot_step"] is not None:
        age = ""
        if rec["updated_at"]:
            age = f" (status {time.time() - rec['updated_at']:.0f}s old)"
        print(f"  last loot at step {rec['last_loot_step']:,}; {rec['loot']} in the vault{age}")
    else:
        print("  no loot yet")
    if rec.get("error"):
        print(f"  the engine crashed: {rec['error']} (see {save.log})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    save = save_from(args)
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
