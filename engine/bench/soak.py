"""`realm bench --soak N`: kill -9 a training engine N times and check that nothing is lost.

`python -m engine.bench.soak [--kills N] [--json]`. A fresh hatchling hero trains with
loot every few steps while quest files are dropped into its inbox. Each round starts
the engine, lets it run for a random while (some kills are aimed at a save in
progress: the moment a temp loot folder appears), and kills it with SIGKILL. After
every kill, and at the next start, it checks:

- the ledger parses (or the engine says it kept it aside), every listed loot reads
  whole (meta.json, trainer.pt, the weights' headers);
- the next engine resumes at the newest complete loot's step (its "resumed_from" row);
- every complete loot folder from before the kill is still there (else: lost);
- every dropped quest file is in exactly one of inbox/ queue/ processing/ done/ failed/.

Prints the counts (kills, kills mid-save, lost, inconsistent) and each problem seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol.config import GameConfig, HeroConfig, TrainConfig, VaultConfig
from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir

QUEST_FOLDERS = ("inbox", "queue/high", "queue/normal", "queue/low", "processing", "done", "failed")


def hero_config() -> HeroConfig:
    """Small fast steps and loot every 3 of them: many saves to be killed in."""
    return HeroConfig(
        name="soak",
        train=TrainConfig(micro_batch=4, seq_len=128, warmup_steps=5, threads=1),
        game=GameConfig(checkpoint_every=3, eval_every=100_000, skills={"bin": 1.0}),
        vault=VaultConfig(keep_last=3),
    )


def complete_loot(save: SaveDir) -> dict[str, int]:
    """Final-named loot folders that hold everything: name -> step."""
    found = {}
    for folder in save.checkpoints.glob("step-*"):
        if folder.name.count(".") or not all((folder / n).exists() for n in ("meta.json", "trainer.pt")):
            continue
        found[folder.name] = int(folder.name.split("-")[1])
    return found


def check_ledger(save: SaveDir) -> list[str]:
    """The ledger parses and every loot it lists reads whole."""
    from engine.store.ledger import check_readable
    from engine.store.vault import Vault

    problems = []
    try:
        check_readable(save.ledger)
    except ValueError as exc:
        return [f"the ledger does not parse: {exc}"]
    text = save.ledger.read_text() if save.ledger.exists() else ""  # killed before its first loot
    data = json.loads(text or "{}")
    listed = [r["name"] for r in data.get("loot", {}).values() if not r.get("deleted")]
    vault = Vault.__new__(Vault)
    for name in listed:
        try:
            Vault.read(vault, save.checkpoints / name)
        except Exception as exc:
            problems.append(f"listed loot {name} does not load: {exc}")
    return problems


def quest_places(save: SaveDir, names: list[str]) -> list[str]:
    """Each dropped file is in exactly one quest folder (under its name or a renamed one)."""
    problems = []
    for name in names:
        stem = Path(name).stem
        places = [
            f"{folder}/{path.name}"
            for folder in QUEST_FOLDERS
            if (save.root / folder).is_dir()
            for path in (save.root / folder).iterdir()
            if path.name == name or (path.name.startswith(stem + "-") and path.suffix == ".jsonl")
        ]
        if len(places) != 1:
            problems.append(f"quest {name} is in {places or 'no folder'}")
    return problems


def resumed_from(save: SaveDir, since: float) -> int | None:
    """The step an engine started after ``since`` (wall time) said it resumed from."""
    try:
        lines = save.metrics.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "resumed_from" in row and row.get("time", 0) >= since:
            return int(row["resumed_from"])
    return None


def has_started(save: SaveDir, since: float) -> bool:
    return resumed_from(save, since) is not None


def soak(kills: int, seed: int, echo: Any) -> dict[str, Any]:
    from transformers.utils import logging as hf_logging

    from engine.model.hatchling import hatch

    hf_logging.disable_progress_bar()

    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="realm-soak-"))
    try:
        save = SaveDir(folder / "saves" / "soak")
        save.create()
        hatch(save.base_model)
        save.config.write_text(hero_config().to_json())
        cmd = [sys.executable, "-m", "engine", "--save-dir", str(save.root)]
        dropped: list[str] = []
        counts = {"kills": 0, "kills_mid_save": 0, "lost": 0, "inconsistent": 0}
        problems: list[str] = []
        for round_ in range(kills):
            started = time.time()
            newest_before = max(complete_loot(save).values(), default=0)
            engine = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not wait(partial(has_started, save, started), 120, engine):
                problems.append(f"round {round_}: the engine did not start")
                counts["inconsistent"] += 1
                engine.kill()
                engine.wait()
                continue
            start_step = resumed_from(save, started)
            if start_step != newest_before:
                counts["inconsistent"] += 1
                problems.append(f"round {round_}: resumed at {start_step}, newest loot was {newest_before}")
            if rng.random() < 0.5:
                name = f"q{round_}.jsonl"
                rows = [{"prompt": f"{round_} ping {i}", "completion": f"pong {i}"} for i in range(6)]
                (save.root / "inbox" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
                dropped.append(name)
            mid_save = rng.random() < 0.4
            if mid_save:
                wait(lambda: any(save.checkpoints.glob(".tmp-*")), 30, engine, poll=0.005)
            else:
                time.sleep(rng.uniform(0.5, 4.0))
            saving = any(save.checkpoints.glob(".tmp-*"))
            loot_at_kill = complete_loot(save)
            os.kill(engine.pid, signal.SIGKILL)
            engine.wait()
            counts["kills"] += 1
            counts["kills_mid_save"] += int(saving)
            lost = sorted(set(loot_at_kill) - set(complete_loot(save)) - pruned(save))
            counts["lost"] += len(lost)
            problems += [f"round {round_}: lost {name}" for name in lost]
            found = check_ledger(save) + quest_places(save, dropped)
            counts["inconsistent"] += len(found)
            problems += [f"round {round_}: {text}" for text in found]
            echo(
                f"kill {counts['kills']}/{kills}{' (mid-save)' if saving else ''}: {counted(len(found), 'problem')}"
            )
        return {**counts, "quests_dropped": len(dropped), "problems": problems[:50]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pruned(save: SaveDir) -> set[str]:
    """Loot the retention rule deleted on purpose (recorded as deleted in the ledger)."""
    try:
        data = json.loads(save.ledger.read_text() or "{}")
    except (OSError, ValueError):
        return set()
    return {r["name"] for r in data.get("loot", {}).values() if r.get("deleted") and not r.get("corrupt")}


def wait(predicate: Any, seconds: float, engine: subprocess.Popen[bytes], poll: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and engine.poll() is None:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kills", type=int, default=50, help="kill -9 rounds (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random waits")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    echo = progress(args.json)
    result = soak(args.kills, args.seed, echo)
    show(result, args.json)
    return 0 if result["lost"] == 0 and result["inconsistent"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
