"""Changing a hero's settings: online (SetConfig from the Armory or `realm config set`, done
between two steps) and offline (``python -m engine.run.settings_work --save-dir DIR KEY
VALUE`` under the engine's lock, with DIO resting). The engine is the single writer of
config.json, so both paths write it here; engine/protocol/settings.py parses and checks.

A live change (``settings.applies(key) == "now"``) is also put into the running worker:
the trainer's learning rate, clip and decay, the skill mix, the cadence of evals and loot,
the vault and watchdog rules. A kill -9 and resume from older loot replays its steps with
the config as it is now (the file), not as it was then.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.model.memory import text_config
from engine.protocol import messages as p
from engine.protocol import settings
from engine.protocol.config import HeroConfig, SettingRefused
from engine.protocol.savedir import SaveDir
from engine.store.atomic import read_json, write_json
from engine.train.fit import past_positions
from skills.registry import all_skills, left_out

if TYPE_CHECKING:
    from engine.run.server import ClientSession
    from engine.run.worker import Worker

EXIT_ENGINE_RUNNING = 3
BATCH_KEYS = ("train.micro_batch", "train.seq_len", "train.grad_accum", "train.gradient_checkpointing")


def changed(data: dict[str, Any], key: str, value: str) -> tuple[dict[str, Any], str]:
    """(config.json with the change, "old → new"); SettingError when refused."""
    before = HeroConfig.from_dict(data) if data else None
    out = settings.set_value(data, key, value)
    after = HeroConfig.from_dict(out)
    if key.startswith("game.skills."):
        skill = key.split(".", 2)[2]
        known = sorted(s.id for s in all_skills())
        if skill not in known and skill in after.game.skills:  # taking one out needs no module
            raise settings.SettingError(
                f"no skill {skill!r} (skills here: {', '.join(known)}){left_out(skill)}"
            )
    old = settings.show(settings.get_value(before, key)) if before else "?"
    return out, f"{key}: {old} → {settings.show(settings.get_value(after, key))}"


def command(w: Worker, client: ClientSession, cmd: p.SetConfig) -> None:
    data = read_json(w.save.config, None) or json.loads(w.config.to_json())
    try:
        new_data, what = changed(data, cmd.key, cmd.value)
    except settings.SettingError as exc:
        client.send(p.ConfigReply(False, str(exc), json.dumps(data), dry_run=cmd.dry_run))
        return
    proposed = HeroConfig.from_dict(new_data)
    positions = getattr(text_config(w.hero.model.config), "max_position_embeddings", None)
    too_long = past_positions(proposed.train.seq_len, positions)
    cannot_run = _precision_problem(w, cmd.key, proposed)
    if too_long or cannot_run:
        client.send(p.ConfigReply(False, too_long or cannot_run, json.dumps(data), dry_run=cmd.dry_run))
        return
    when = _when(w, cmd.key)
    memory = _memory(w, cmd.key, proposed)
    later = f"saved; applies when {w.config.name.upper()} next starts"
    message = f"{what} ({'from the next step' if when == 'now' else later})"
    if memory:
        message += f" · memory: {memory}"
    if cmd.dry_run:
        message += " — a dry run: nothing changed"
        reply = p.ConfigReply(True, message, json.dumps(new_data), when, dry_run=True)
        client.send(reply)
        return
    write_json(w.save.config, new_data)
    if when == "now":
        apply_live(w, cmd.key, proposed)
    w.note(f"Settings: {message}", kind="run")
    # to every client: another open Armory or stats screen sees the change too
    w.server.broadcast(
        p.ConfigReply(ok=True, message=message, config_json=json.dumps(new_data), applies=when)
    )


def _precision_problem(w: Worker, key: str, proposed: HeroConfig) -> str:
    """A precision this device would emulate is refused now, not at the next start."""
    if key != "train.precision":
        return ""
    from engine.train.trainer import pick_precision

    try:
        pick_precision(proposed.train, w.hero.device)
    except SettingRefused as exc:
        return str(exc)
    return ""


def _when(w: Worker, key: str) -> str:
    when = settings.applies(key)
    if key.startswith("game.skills.") and key.split(".", 2)[2] not in w.curriculum.skills:
        return "restart"  # a new skill needs its eval sets and row sizes: built at start
    return when


def _memory(w: Worker, key: str, proposed: HeroConfig) -> str:
    """The memory estimate of a batch-shape change (0 = automatic keeps today's value)."""
    if key not in BATCH_KEYS:
        return ""
    from engine.model.memory import choose_plan

    train = proposed.train
    concrete = replace(
        train,
        micro_batch=train.micro_batch or w.config.train.micro_batch,
        seq_len=train.seq_len or w.config.train.seq_len,
    )
    line, over, _ = choose_plan(
        w.hero.model.config, w.hero.device, replace(proposed, train=concrete), w.shards
    )
    return line + (" — OVER the GPU's memory" if over else "")


def apply_live(w: Worker, key: str, new: HeroConfig) -> None:
    """Put a "now" change into the running worker (its config keeps the concrete batch)."""
    from engine.run import campaign_work

    section = key.split(".")[0]
    w.config = replace(w.config, **{section: _merged(getattr(w.config, section), getattr(new, section))})
    if section == "train":
        w.trainer.cfg = campaign_work.train_config(w.config.train, w.campaign)
        w.trainer.optimizer.param_groups[0]["weight_decay"] = w.config.train.weight_decay
        w.trainer.set_lr_scale(w.trainer.lr_scale)
    elif key.startswith("game.skills."):
        w.curriculum.weights = campaign_work.weights(w.config, w.campaign)
        w.stream.sources = campaign_work.sources(w)
        w.stream_label = w.stream.label
    elif section == "watchdog":
        w.watchdog.cfg = w.config.watchdog
    w.keeper.config = w.config


def _merged(running: Any, new: Any) -> Any:
    """The new section, but the batch the worker resolved (0 = automatic) stays concrete."""
    if hasattr(running, "seq_len"):
        return replace(new, seq_len=running.seq_len, micro_batch=running.micro_batch)
    return new


# ---------------------------------------------------------------------- offline


def offline(save: SaveDir, key: str, value: str, dry_run: bool) -> tuple[bool, str, str]:
    """(ok, message, config json) with DIO resting: the engine's lock is held meanwhile."""
    if not save.config.exists():
        data = json.loads(HeroConfig(name=save.root.name).to_json())
    else:
        data = read_json(save.config, None) or {}
    new_data, what = changed(data, key, value)
    too_long = past_positions(
        HeroConfig.from_dict(new_data).train.seq_len, _offline_positions(save, new_data)
    )
    if too_long:
        raise settings.SettingError(too_long)
    what += _offline_memory(save, key, new_data)
    if dry_run:
        return True, f"{what} — a dry run: nothing changed", json.dumps(new_data)
    save.create()
    lock = save.try_lock()
    if lock is None:
        raise EngineRunning
    try:
        write_json(save.config, new_data)
    finally:
        lock.close()
    hero = str(new_data.get("name") or save.root.name).upper()
    return True, f"{what} (saved; applies when {hero} next starts)", json.dumps(new_data)


def _offline_memory(save: SaveDir, key: str, data: dict[str, Any]) -> str:
    """A batch-shape change's memory estimate from the model folder's config.json (no
    weights loaded); "" when there is no estimate to give."""
    if key not in BATCH_KEYS:
        return ""
    from engine.model.estimate import hero_estimate

    try:
        return f" · memory: {hero_estimate(HeroConfig.from_dict(data), save.base_model)}"
    except (OSError, ValueError, TypeError) as exc:
        return f" · no memory estimate ({exc})"


def _offline_positions(save: SaveDir, data: dict[str, Any]) -> int | None:
    """The hero's model's max_position_embeddings from its config.json (no weights)."""
    from engine.model.estimate import folder_config, hatchling_config, model_folder_of

    folder = model_folder_of(HeroConfig.from_dict(data), save.base_model)
    try:
        shape = folder_config(folder) if (folder / "config.json").is_file() else hatchling_config()
    except (OSError, ValueError):
        return None
    return getattr(shape, "max_position_embeddings", None)


class EngineRunning(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.run.settings_work")
    parser.add_argument("--save-dir", required=True, type=Path)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("key")
    parser.add_argument("value")
    args = parser.parse_args(argv)
    try:
        ok, message, config = offline(SaveDir(args.save_dir), args.key, args.value, args.dry_run)
    except EngineRunning:
        return EXIT_ENGINE_RUNNING
    except settings.SettingError as exc:
        ok, message, config = False, str(exc), ""
    except (OSError, ValueError) as exc:
        ok, message, config = False, f"cannot change the config: {exc}", ""
    print(json.dumps({"ok": ok, "message": message, "data": json.loads(config) if config else None}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
