"""`realm vault list|best|prune|pin|unpin|delete|rewind|eval|compare|export`.

With the hero's engine running, each command goes to it (the engine is the single
writer of the save folder). With it down, ``python -m engine.store.commands`` (no
torch) lists, pins, deletes, prunes and rewinds on disk under the engine's lock, with
the same dispatcher the engine uses; eval and compare need the engine's model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.names import canonical_loot, printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, engine_side, save_from

REPLY_WAIT = 600.0  # eval and compare generate every eval problem (minutes on a big model)

VAULT_HELP = """\
Loot are DIO's checkpoints. Each knows its step, reason (auto, manual, quest, stop,
rewind), losses, size, and its own eval scores ("not evaluated" until an eval ran at
its step or `realm vault eval` asked). The retention policy (the hero's config.json,
section "vault") keeps the newest few, the best by val loss and by each skill, pinned
loot and the loot training resumes from, within a disk budget; everything else is
deleted after each new loot, with its reason in the log."""


def add_parsers(sub: Any) -> None:
    vault = sub.add_parser(
        "vault",
        help="browse, keep, compare, rewind to and prune loot (checkpoints)",
        description=VAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vault.set_defaults(run=cmd_vault)
    ops = vault.add_subparsers(dest="vault_command", metavar="ACTION")

    listing = ops.add_parser("list", help="every loot with its losses, scores, size and why it is kept")
    add_hero_args(listing)
    listing.add_argument("--json", action="store_true", help="a JSON list of loot objects")

    best = ops.add_parser("best", help="the best loot by a metric")
    add_hero_args(best)
    best.add_argument("--metric", default="val_loss", help="val_loss, train_loss or a skill id (bin, sy)")
    best.add_argument("--json", action="store_true")

    prune = ops.add_parser("prune", help="delete what the retention policy gives up")
    add_hero_args(prune)
    prune.add_argument("--dry-run", action="store_true", help="only show what would go, and why")

    for name, text in (
        ("pin", "keep a loot whatever the policy says"),
        ("unpin", "let the policy decide about a loot again"),
        ("eval", "evaluate a loot's own weights on every skill (the engine must be running)"),
    ):
        op = ops.add_parser(name, help=text)
        add_hero_args(op)
        op.add_argument("name", help="a loot, e.g. step-000200 or 200")
    for name, text in (
        ("delete", "delete a loot (never the one training resumes from)"),
        ("rewind", "continue training from an older loot; newer loot are set aside, not deleted"),
    ):
        op = ops.add_parser(name, help=text)
        add_hero_args(op)
        op.add_argument("name", help="a loot, e.g. step-000200 or 200")
        op.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    compare = ops.add_parser("compare", help="two loot side by side, and which eval problems each gets right")
    add_hero_args(compare)
    compare.add_argument("a")
    compare.add_argument("b")
    compare.add_argument("--json", action="store_true")


def to_command(args: argparse.Namespace) -> p.VaultCommand:
    match args.vault_command:
        case "list" | "best":
            return p.ListLoot()
        case "prune":
            return p.ListLoot() if args.dry_run else p.PruneLoot()
        case "pin" | "unpin":
            return p.PinLoot(args.name, args.vault_command == "pin")
        case "delete":
            return p.DeleteLoot(args.name)
        case "rewind":
            return p.RewindTo(args.name)
        case "eval":
            return p.EvalLoot(args.name)
        case "compare":
            return p.CompareLoot(args.a, args.b)
    raise SystemExit("realm: usage: realm vault list|best|prune|pin|unpin|delete|rewind|eval|compare")


Answer = tuple[bool, str, p.VaultListed | None, p.LootCompared | None]


def online(save: SaveDir, command: p.VaultCommand) -> Answer:
    with EngineClient.connect_waiting(save) as client:
        client.hello(client="realm vault", watcher=False)
        kinds = (p.VaultListed, p.VaultReply, p.CommandRejected)
        if isinstance(command, p.ListLoot):
            return True, "", client.request(command, kinds, REPLY_WAIT), None
        compared = None
        client.send(command)
        reply = client.wait_until(lambda e: isinstance(e, (*kinds[1:], p.LootCompared)), REPLY_WAIT, "reply")
        if isinstance(reply, p.LootCompared):
            compared = reply
            reply = client.wait_for(kinds[1:], REPLY_WAIT)
        if isinstance(reply, p.CommandRejected):
            return False, reply.reason, None, None
        listing = client.wait_for(p.VaultListed, 30) if reply.ok else None
        client.close(goodbye=True)
        return reply.ok, reply.message, listing, compared


def offline(save: SaveDir, command: p.VaultCommand) -> Answer | None:
    """The engine is down: engine-side, under its lock (None: an engine started meanwhile)."""
    args = ["--save-dir", str(save.root)]
    if not isinstance(command, p.ListLoot):
        args += ["--command", json.dumps(p.command_to_dict(command))]
    answer = engine_side("engine.store.commands", args, "vault")
    if answer is None:
        return None
    return answer["ok"], answer["message"], p.vault_listed_from_dict(answer["vault"]), None


def loot_record(loot: p.LootInfo) -> dict[str, Any]:
    """One object of `realm vault list --json`."""
    row = asdict(loot)
    row["kept_because"] = list(loot.kept_because)
    row["skills"] = {
        s.skill: {"accuracy": s.accuracy, "level": s.level, "problems": s.problems} for s in loot.skills
    }
    for s in loot.skills:
        row[s.skill] = s.accuracy  # per-skill accuracy at the top level too
    row["metrics"] = dict(loot.metrics)  # eval suites: {suite: score}
    row["evaluated"] = loot.evaluated
    return row


def size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def describe(loot: p.LootInfo, doomed: dict[str, str]) -> str:
    val = f"{loot.val_loss:.3f}" if loot.val_loss is not None else "  -  "
    train = f"{loot.train_loss:.3f}" if loot.train_loss is not None else "  -  "
    scores = " ".join(f"{s.skill} {s.accuracy:>4.0%} L{s.level}" for s in loot.skills) or "not evaluated"
    scores += "".join(f" {name} {score:.0%}" for name, score in loot.metrics)
    why = ", ".join(loot.kept_because) if loot.kept_because else f"GOES: {doomed.get(loot.name, '')}"
    pin = "*" if loot.pinned else " "
    when = time.strftime("%m-%d %H:%M", time.localtime(loot.time))
    return printable(
        f"{pin}{loot.name:<15} {loot.reason:<7} {when}  train {train} val {val}  {size(loot.size_bytes):>9}"
        f"  {scores:<24} {why}"
    )


def print_listing(listing: p.VaultListed, as_json: bool) -> None:
    if as_json:
        print(json.dumps([loot_record(loot) for loot in listing.loot], indent=1))
        return
    if not listing.loot:
        print("No loot yet: DIO saves loot every few hundred steps, or press s in the game.")
        return
    doomed = dict(listing.doomed)
    for loot in listing.loot:
        print(describe(loot, doomed))
    budget = f" of a {size(listing.budget_bytes)} budget" if listing.budget_bytes else ""
    print(
        f"{len(listing.loot)} loot, {size(listing.kept_bytes)} kept{budget}; training resumes from {listing.resume_from}"
    )
    if listing.over_budget:
        print("Pinned, best and resume loot alone are over the disk budget: unpin some or raise the budget.")


def print_best(listing: p.VaultListed, metric: str, as_json: bool) -> int:
    best = dict(listing.best)
    if metric not in best:
        known = ", ".join(best) or "none yet (no loot has been evaluated)"
        print(f"no loot has a value for {metric!r}; metrics: {known}", file=sys.stderr)
        return 1
    loot = next(x for x in listing.loot if x.name == best[metric])
    print(json.dumps({"metric": metric, **loot_record(loot)}) if as_json else describe(loot, {}))
    return 0


def print_comparison(c: p.LootCompared, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(c)))
        return
    print(f"{'':<14} {c.a:>15} {c.b:>15}")
    for metric, a, b in c.metrics:
        fa = "-" if a is None else f"{a:.3f}" if isinstance(a, float) else str(a)
        fb = "-" if b is None else f"{b:.3f}" if isinstance(b, float) else str(b)
        print(f"{metric:<14} {fa:>15} {fb:>15}")
    groups = {
        "fixed": (False, True),
        "broken": (True, False),
        "both right": (True, True),
        "both wrong": (False, False),
    }
    for label, marks in groups.items():
        hits = [d for d in c.problems if (d.a_right, d.b_right) == marks]
        print(f"{label} ({len(hits)}):")
        for d in hits[:10]:
            print(printable(f"  [{d.skill} L{d.level}] {d.prompt[:90]}"))
            if d.expected and marks != (True, True):  # how a wrong one went wrong
                said = " · ".join(
                    f"{name}: {' '.join(x.split())[:40] or '(nothing)'}"
                    for name, x in ((c.a, d.a_answer), (c.b, d.b_answer))
                )
                print(printable(f"      right: {d.expected[:40]} · {said}"))


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print(f"{question} Add --yes to do it without asking.", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def loot_names(save: SaveDir, running: bool) -> list[str]:
    """The loot there is ([] when it cannot be read: the command itself will say why)."""
    try:
        answer = (None if running else offline(save, p.ListLoot())) or online(save, p.ListLoot())
    except (OSError, TimeoutError, EngineGone, SystemExit):
        return []
    return [loot.name for loot in answer[2].loot] if answer[2] is not None else []


def confirmed(args: argparse.Namespace, save: SaveDir, running: bool) -> bool:
    """Delete and rewind ask first (unless --yes), about a loot that is there: a name
    that is not is said at once, not after the question."""
    if args.vault_command not in ("delete", "rewind") or args.yes:
        return True
    name = canonical_loot(args.name)
    if name != "latest" and not name.startswith("best-"):  # those are the engine's to resolve
        names = loot_names(save, running)
        if names and name not in names:
            print(f"no loot {args.name!r} (loot: {', '.join(names)})", file=sys.stderr)
            return False
    verb = "Delete" if args.vault_command == "delete" else "Rewind training to"
    return confirm(f"{verb} {name}?")


def cmd_vault(args: argparse.Namespace) -> int:
    if args.vault_command is None:
        raise SystemExit("realm: usage: realm vault list|best|prune|pin|unpin|delete|rewind|eval|compare")
    save = save_from(args)
    if not save.config.is_file():
        print(save.no_hero, file=sys.stderr)
        return 1
    command = to_command(args)
    running = save.engine_pid() is not None
    if not confirmed(args, save, running):
        return 1
    if isinstance(command, (p.EvalLoot, p.CompareLoot)) and not running:
        print(
            "eval and compare need DIO's engine: start it with `realm train` or `realm play`", file=sys.stderr
        )
        return 1
    try:
        result = None if running else offline(save, command)
        if result is None:
            result = online(save, command)
    except (OSError, TimeoutError, EngineGone) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1
    ok, message, listing, compared = result
    if message:
        print(printable(message), file=sys.stdout if ok else sys.stderr)
    return present(args, listing, compared) if ok else 1


def present(args: argparse.Namespace, listing: p.VaultListed | None, compared: p.LootCompared | None) -> int:
    """Print what the command asked to see."""
    if compared is not None:
        print_comparison(compared, args.json)
    elif listing is None:
        return 0
    elif args.vault_command == "best":
        return print_best(listing, args.metric, args.json)
    elif args.vault_command == "prune" and args.dry_run:
        for name, why in listing.doomed:
            print(f"would delete {name}: {why}")
        if not listing.doomed:
            print("nothing would be deleted: every loot is kept by a rule")
    elif args.vault_command == "list":
        print_listing(listing, args.json)
    return 0
