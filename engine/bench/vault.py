"""Vault and Oracle figures on a fresh hatchling (`realm bench --vault`).

1. Disk: train ``--steps`` steps with the default config while ``--quests`` small quest
   files are dropped into the real inbox (each finished quest takes loot), then report
   the vault's size under the default retention policy, and what the rule before it
   (every non-automatic loot kept forever, the newest 5 automatic ones) would have
   kept: the ledger remembers every loot's size, deleted or not.
2. The Oracle: time to first token and tokens/s for a greedy reply of ``--tokens``,
   asked of the live weights and of a loot loaded beside them (min/median/max of 5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.output import progress, show
from engine.protocol import messages as p
from engine.protocol.client import EngineClient
from engine.protocol.config import HeroConfig
from engine.protocol.savedir import SaveDir

OLD_KEEP_AUTO = 5


def disk(save: SaveDir, ledger_rows: list[dict[str, Any]]) -> dict[str, Any]:
    auto = [r for r in ledger_rows if r.get("reason") == "auto"]
    old_kept = [r for r in ledger_rows if r.get("reason") != "auto"] + auto[-OLD_KEEP_AUTO:]
    size = sum(f.stat().st_size for f in save.checkpoints.rglob("*") if f.is_file())
    live = [r for r in ledger_rows if not r.get("deleted")]
    return {
        "loot_taken": len(ledger_rows),
        "loot_kept": len(live),
        "vault_mb_default_policy": round(size / 1e6, 1),
        "loot_kept_before": len(old_kept),
        "vault_mb_before": round(sum(int(r.get("size_bytes") or 0) for r in old_kept) / 1e6, 1),
    }


def timed(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def oracle_figures(ui: EngineClient, loot: str, tokens: int, say: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ui.send(p.Pause())
    ui.wait_for(p.Paused, 120)
    for label, target in (("live", None), ("loot_beside", loot)):
        first, speed = [], []
        for i in range(6):
            answer = ui.request(
                p.Ask(f"{label}{i}", ("Compute: add(①, ①⓪)",), target, max_new_tokens=tokens),
                (p.OracleAnswered, p.CommandRejected),
                300,
            )
            if not isinstance(answer, p.OracleAnswered):
                raise RuntimeError(answer.reason)
            if i == 0:
                continue  # the first loads the loot copy: timed apart below
            first.append(answer.first_token_s or 0.0)
            speed.append(answer.new_tokens / answer.seconds)
        out[f"oracle_{label}_first_token_s"] = timed(first)
        out[f"oracle_{label}_tokens_per_s"] = timed(speed)
        say(
            f"  oracle {label}: first token {statistics.median(first):.3f}s, {statistics.median(speed):.0f} tok/s"
        )
    ui.send(p.Resume())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--quests", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=64, help="reply length for the Oracle figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = progress(args.json)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.run.worker import run_in_thread
    from engine.store.ledger import Ledger

    folder = Path(tempfile.mkdtemp(prefix="realm-bench-vault-"))
    save = SaveDir(folder / "dio")
    config = HeroConfig(name="dio")
    ui_end, worker, thread = run_in_thread(save, config)
    ui = EngineClient(ui_end)
    result: dict[str, Any] = {"steps": args.steps, "quests": args.quests}
    try:
        ui.hello(client="bench")
        row = json.dumps(
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
        )
        every = max(1, args.steps // max(1, args.quests))
        dropped = 0
        started = time.monotonic()
        while True:
            step = ui.wait_for(p.StepCompleted, 300).step
            while dropped < args.quests and step >= dropped * every:
                (save.root / "inbox" / f"q{dropped:03d}.jsonl").write_text(
                    f"{row}\n" * 8 + json.dumps({"text": f"quest {dropped}"}) + "\n"
                )
                dropped += 1
            if step >= args.steps:
                break
            if step % 100 == 0:
                say(f"  step {step}, {dropped} quests dropped, {time.monotonic() - started:.0f}s")
        done_quests = sum(
            1 for q in ui.request(p.ListLoot(), (p.VaultListed,), 60).loot if q.reason == "quest"
        )
        rows = [dict(r) for r in Ledger(save.ledger, read_only=True).loot.all()]
        result.update(disk(save, rows))
        result["quest_loot_kept"] = done_quests
        result["train_seconds"] = round(time.monotonic() - started)
        live = [r["name"] for r in rows if not r.get("deleted")]
        if not live:  # a run too short for any loot: the Oracle figures need one to load
            ui.send(p.SaveNow())
            live = [ui.wait_for(p.CheckpointSaved, 120).loot.name]
        result.update(oracle_figures(ui, live[0], args.tokens, say))
    finally:
        worker.request_stop("bench over")
        thread.join(120)
    show(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
