"""`realm campaign start|status|check|stop`: training in phases from a YAML file.

With the engine running, start and stop go to it (the phase begins at once, after a
loot). With it down, ``python -m engine.train.campaign_files`` checks the file and keeps
it in the save; DIO follows it from its next start. Checking never needs the engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.protocol import messages as p
from engine.protocol.client import EngineClient, EngineGone
from engine.protocol.names import counted, printable
from engine.protocol.savedir import SaveDir
from tui.cli.common import add_hero_args, engine_side, save_from

REPLY_WAIT = 120.0  # the campaign's loot is saved before the reply

CAMPAIGN_HELP = """\
A campaign is a YAML file of phases, trained in order:

  name: specialist                  # required
  description: general practice, then SY alone
  rehearsal: 0.2                    # default share of earlier phases in later ones
  when_done: continue               # continue | pause | stop (after the last phase)
  phases:
    - name: general                 # required
      skills: {bin: 1.0, sy: 1.0}   # skill id: weight in the mix
      quests: [extra.jsonl]         # quest files (paths relative to this file), queued high
      steps: 600                    # how long: steps, epochs (passes over its quests) or until
      lr: 2.0e-3                    # optional, else the hero's train.lr; so are the next three
      schedule: cosine              # cosine | linear | constant (after warmup_steps)
      warmup_steps: 50
      min_lr_ratio: 0.1
      decay_steps: 600              # default: the phase's steps, else the hero's
    - name: specialist
      skills: {sy: 1.0}
      until:                        # every condition must hold
        - {skill: sy, level: 3}     # a skill reaches a level
        - {suite: bin20, score: 0.8}  # an eval suite (realm evals add) scores at least 80%
      max_steps: 3000               # with until: end the phase anyway after this many steps
      rehearsal: 0.2                # this phase's share of earlier phases (0: none)
      evals: [bin20]                # suites run on the loot that ends the phase

Each phase ends with loot (its skills evaluated, its suites run). Problems are reported
with their line, e.g. "line 9: phase 1 (general): unknown key 'stpes' (did you mean
'steps'?)"."""


MARKS = {"done": "✓", "current": "▶", "next": " "}


def add_parsers(sub: Any) -> None:
    campaign = sub.add_parser(
        "campaign",
        help="train in phases from a YAML file (general, then specialist): start, status, check, stop",
        description=CAMPAIGN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    campaign.set_defaults(run=cmd_campaign)
    ops = campaign.add_subparsers(dest="campaign_command", metavar="ACTION")
    start = ops.add_parser(
        "start", help="check a campaign file and follow it (a shipped one by name: specialist)"
    )
    add_hero_args(start)
    start.add_argument("file", help="a campaign YAML file, or the name of a shipped campaign")
    status = ops.add_parser("status", help="the campaign map: phases, the current one, its gate")
    add_hero_args(status)
    status.add_argument("--json", action="store_true", help="print the campaign as one JSON object")
    check = ops.add_parser("check", help="check a campaign file without starting it (errors name the line)")
    add_hero_args(check)
    check.add_argument("file")
    stop = ops.add_parser("stop", help="leave the campaign: DIO goes back to its own skills and schedule")
    add_hero_args(stop)


Reply = tuple[bool, str, Any]


def _file_arg(name: str) -> str:
    """An existing file as an absolute path; anything else as given (a shipped name)."""
    path = Path(name).expanduser()
    return str(path.absolute()) if path.exists() else name


def offline(save: SaveDir, action: str, file: str | None) -> Reply | None:
    args = ["--save-dir", str(save.root), action, *([file] if file else [])]
    answer = engine_side("engine.train.campaign_files", args, "campaign")
    return None if answer is None else (answer["ok"], answer["message"], answer["data"])


def online(save: SaveDir, action: str, file: str | None) -> Reply:
    with EngineClient.connect_waiting(save) as client:
        snapshot = client.hello(client="realm campaign", watcher=False)
        if action == "status":
            client.close(goodbye=True)
            info = snapshot.campaign
            return True, "", asdict(info) if info else None
        command = p.StartCampaign(file or "") if action == "start" else p.EndCampaign()
        reply = client.request(command, (p.CampaignReply, p.CommandRejected), REPLY_WAIT)
        client.close(goodbye=True)
    if isinstance(reply, p.CommandRejected):
        return False, reply.reason, None
    return reply.ok, reply.message, None


def show_map(data: dict[str, Any] | None) -> None:
    if not data:
        print("DIO follows no campaign. Start one: realm campaign start specialist (or a FILE; see --help).")
        return
    state = "complete" if data["finished"] else ("not begun yet" if data.get("pending") else "in progress")
    print(
        printable(
            f"Campaign {data['name']} ({state})" + (f": {data['description']}" if data["description"] else "")
        )
    )
    for i, phase in enumerate(data["phases"]):
        mark = MARKS.get(phase["state"], " ")
        head = f" {mark} {i + 1}. {phase['name']:<14} {phase['skills']:<18} {phase['length']}"
        print(printable(head))
        details = [phase["schedule"]] if phase["schedule"] else []
        if phase["rehearsal"]:
            details.append(f"rehearses earlier phases {phase['rehearsal']:.0%}")
        if phase["quests"]:
            details.append(f"{counted(phase['quests'], 'quest file')}")
        if phase["state"] == "done":
            details.append(
                f"steps {phase['start_step']:,}–{phase['end_step']:,}, loot {phase['loot']}: {phase['result']}"
            )
        elif phase["state"] == "current" and phase["start_step"] is not None:
            done = f" ({phase['progress']:.0%})" if phase["progress"] is not None else ""
            details.append(f"since step {phase['start_step']:,}{done}: {phase['gate']}")
        for line in details:
            print(printable(f"      {line}"))


def cmd_campaign(args: argparse.Namespace) -> int:
    action = args.campaign_command
    if action is None:
        raise SystemExit("realm: usage: realm campaign start|status|check|stop (see realm campaign --help)")
    save = save_from(args)
    file = _file_arg(args.file) if getattr(args, "file", None) else None
    try:
        result = None if save.engine_pid() is not None and action != "check" else offline(save, action, file)
        if result is None:
            result = online(save, action, file)
    except (OSError, TimeoutError, EngineGone) as exc:
        print(f"could not reach the engine: {exc}", file=sys.stderr)
        return 1
    ok, message, data = result
    if not ok:
        print(printable(message), file=sys.stderr)
        return 1
    if action == "status":
        if args.json:
            print(json.dumps(data))
        else:
            show_map(data)
        return 0
    print(printable(message))
    return 0
