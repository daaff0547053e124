"""A rank other than 0 in `realm train --gpus N`: it only trains (engine/train/team.py).

It writes nothing and serves no one: each order comes from rank 0 — "sync" (load the
weights rank 0 loaded, take its exact state), "step" (this rank's share of the global
batch), "state" (sharded: help gather the optimizer state for loot), "stop". Signals are rank 0's business: a Ctrl+C or SIGTERM that torchrun passes
on is ignored here, and the run ends when rank 0 says so (after its stop loot) or when a
collective fails because a rank died.
"""

from __future__ import annotations

import gc
import logging
import signal
from pathlib import Path
from typing import Any

log = logging.getLogger("engine.replica")


def follow(trainer: Any, order: dict[str, Any]) -> None:
    """Live settings rank 0 changed (lr, clip, decay) and its watchdog's lr scale."""
    if order["train"] != trainer.cfg:
        trainer.cfg = order["train"]
        trainer.optimizer.param_groups[0]["weight_decay"] = trainer.cfg.weight_decay
        trainer.set_lr_scale(order["lr_scale"])
    elif order["lr_scale"] != trainer.lr_scale:
        trainer.set_lr_scale(order["lr_scale"])


def run_replica(shard: bool = False) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    from engine.run.main import quiet_libraries

    quiet_libraries()
    from engine.model.hero import load_hero
    from engine.model.memory import checkpoint_activations
    from engine.run.host_memory import keep_freed_memory
    from engine.train.team import Team
    from engine.train.trainer import Trainer

    team = Team.from_env(shard)
    if team is None:
        return 2
    keep_freed_memory()  # as rank 0 does
    trainer: Any = None
    hero: Any = None
    try:
        while True:
            order = team.tell(None)
            if order["op"] == "stop":
                team.part()
                return 0
            if order["op"] == "sync":
                trainer = None
                gc.collect()
                config = order["config"]
                adapter = Path(order["adapter"]) if order["adapter"] else None
                hero = load_hero(
                    Path(order["folder"]), team.device, config.model_label, config.mode, config.lora, adapter
                )
                if order["shard"] != team.shard:  # both read --fsdp from the same command line
                    raise RuntimeError("rank 0 and this rank disagree on --fsdp")
                if order["checkpointing"]:
                    checkpoint_activations(hero.model)
                trainer = Trainer(hero.model, order["train"], team.device, order["first_step"], team)
                team.copy_state(hero.model, trainer)
                log.info("rank %d follows rank 0 from %s", team.rank, order["folder"])
            elif order["op"] == "step":
                follow(trainer, order)
                trainer.step(order["micro"])
            elif order["op"] == "state":  # rank 0 saves loot: the sharded optimizer state, gathered
                trainer.state_dict()
    finally:
        trainer = hero = None  # the sharded model goes before its process group (Team.close)
        team.close()
