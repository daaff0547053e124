"""Vault commands, carried out in one place for both paths (as quests are):

- online, inside the engine, between two steps (``engine/run/commands.py`` calls
  ``carry_out``; a rewind then restarts the worker from the loot);
- offline, `realm vault …` with the hero's engine down: the game's CLI runs
  ``python -m engine.store.commands --save-dir DIR [--command JSON]`` (no torch). A
  command that changes the vault takes the engine's lock first; a plain listing only
  reads (the ledger is written atomically) and works beside a running engine.

Exit status offline: 0 done, 1 refused (the message says why), 2 bad request, 3 an
engine holds the lock (ask it instead). The last line printed is one JSON object:
``{"ok", "message", "vault": VaultListed as a dict}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.config import HeroConfig, VaultConfig
from engine.protocol.savedir import SaveDir
from engine.store import retention
from engine.store.ledger import Ledger
from engine.store.vault import Vault, is_main_line

EXIT_ENGINE_RUNNING = 3
OFFLINE = (p.ListLoot, p.PinLoot, p.DeleteLoot, p.PruneLoot, p.RewindTo)


class VaultError(Exception):
    """A vault command that cannot be carried out; the message says why."""


def loot_info(row: dict[str, Any], kept_because: tuple[str, ...] = ()) -> p.LootInfo:
    scores = tuple(
        p.SkillScore(skill, int(e.get("level", 0)), float(e["accuracy"]), int(e.get("problems", 0)))
        for skill, e in sorted((row.get("evals") or {}).items())
    )
    return p.LootInfo(
        step=row["step"],
        name=row["name"],
        time=row["time"],
        reason=row.get("reason", "auto"),
        train_loss=row.get("train_loss"),
        val_loss=row.get("val_loss"),
        lr=row.get("lr", 0.0),
        source=row.get("source", ""),
        size_bytes=int(row.get("size_bytes") or 0),
        pinned=bool(row.get("pinned")),
        kept_because=kept_because,
        skills=scores,
        set_aside=not is_main_line(row["name"]),
        metrics=tuple(sorted((str(k), float(v)) for k, v in (row.get("metrics") or {}).items())),
    )


def listed(vault: Vault, policy: VaultConfig) -> p.VaultListed:
    rows = vault.rows()
    plan = retention.plan(rows, policy, vault.resume_name(), vault.budget_bytes(policy))
    return p.VaultListed(
        loot=tuple(loot_info(row, plan.kept_because(row["name"])) for row in rows),
        doomed=tuple((v.name, v.delete_reason) for v in plan.doomed),
        kept_bytes=plan.kept_bytes,
        budget_bytes=plan.budget_bytes or 0,
        over_budget=plan.over_budget,
        resume_from=vault.resume_name(),
        best=best_by_metric(rows),
    )


def best_by_metric(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The best loot for every metric some loot has (val loss, train loss, each skill,
    each recorded metric)."""
    metrics = ["val_loss", "train_loss", *retention.skill_metrics(rows)]
    metrics += sorted({m for row in rows for m in (row.get("metrics") or {})} - set(metrics))
    out = []
    for metric in metrics:
        winner = retention.best(rows, metric)
        if winner is not None:
            out.append((metric, winner["name"]))
    return tuple(out)


def carry_out(vault: Vault, policy: VaultConfig, command: p.VaultCommand) -> str:
    """Carry out one vault command that needs no model; returns the reply. Raises
    VaultError (unknown loot, a refused deletion). EvalLoot and CompareLoot need the
    weights: the engine carries them out itself."""
    match command:
        case p.ListLoot():
            return ""
        case p.PinLoot():
            row = find(vault, command.name)
            vault.pin(row["name"], command.pinned)
            return (
                f"{row['name']} {'pinned: it is kept whatever the policy' if command.pinned else 'unpinned'}"
            )
        case p.DeleteLoot():
            row = find(vault, command.name)
            if row["name"] == vault.resume_name():
                raise VaultError(
                    f"{row['name']} is the loot training resumes from; rewind to an older one first"
                )
            vault.delete(row["name"])
            return f"{row['name']} deleted"
        case p.PruneLoot():
            gone = vault.prune(policy)
            if not gone:
                return "nothing to prune: every loot is kept by a rule"
            return "pruned " + "; ".join(f"{v.name} ({v.delete_reason})" for v in gone)
        case p.RewindTo():
            row = find(vault, command.name)
            if not is_main_line(row["name"]):
                raise VaultError(
                    f"{row['name']} was set aside by an earlier rewind; rewind to loot of the "
                    "current line (you can still export it or ask it)"
                )
            moved = vault.set_aside_after(row["step"])
            aside = (
                f"; {len(moved)} newer loot set aside as {', '.join(n for _, n in moved)}" if moved else ""
            )
            return f"training continues from {row['name']} (step {row['step']}){aside}"
        case p.EvalLoot() | p.CompareLoot():
            raise VaultError("evaluating loot needs the engine: start it with `realm train` or `realm play`")


def find(vault: Vault, name: str) -> dict[str, Any]:
    try:
        return vault.find(name)
    except KeyError as exc:
        raise VaultError(exc.args[0]) from None


def listed_dict(vault: p.VaultListed) -> dict[str, Any]:
    return asdict(vault)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.store.commands")
    parser.add_argument("--save-dir", type=Path, required=True)
    parser.add_argument("--command", help="a vault command as JSON (messages.command_to_dict); none: list")
    args = parser.parse_args(argv)
    command: p.VaultCommand = p.ListLoot()
    if args.command:
        try:
            parsed = p.command_from_dict(json.loads(args.command))
        except ValueError as exc:
            print(f"bad request: {exc}", file=sys.stderr)
            return 2
        if not isinstance(parsed, OFFLINE):
            print(f"bad request: {type(parsed).__name__} is not an offline vault command", file=sys.stderr)
            return 2
        command = parsed
    save = SaveDir(args.save_dir)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    lock = None
    if not isinstance(command, p.ListLoot):
        lock = save.try_lock()
        if lock is None:
            return EXIT_ENGINE_RUNNING
    try:
        policy = HeroConfig.load(save.config).vault
        if lock is None and not save.ledger.exists():  # nothing saved yet; a listing creates nothing
            print(json.dumps({"ok": True, "message": "", "vault": listed_dict(p.VaultListed(loot=()))}))
            return 0
        try:
            ledger = Ledger(save.ledger, read_only=lock is None)
        except ValueError as exc:
            print(f"{exc}; the engine repairs it when it starts", file=sys.stderr)
            return 1
        vault = Vault(save.root, ledger)
        ok = True
        try:
            message = carry_out(vault, policy, command)
        except (VaultError, OSError) as exc:
            ok, message = False, str(exc)
        print(json.dumps({"ok": ok, "message": message, "vault": listed_dict(listed(vault, policy))}))
        return 0 if ok else 1
    finally:
        if lock is not None:
            lock.close()


if __name__ == "__main__":
    sys.exit(main())
