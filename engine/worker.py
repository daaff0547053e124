"""The worker loop: the engine's main thread, read top to bottom.

start():  load the hero, resume from the newest loot, build the stream
run():    while not stopping:
              handle UI commands (block while paused)
              one optimizer step -> stats, metrics, throttled StepCompleted
              level-up? eval due? loot due? max steps?
          save loot, say Stopped
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import torch

from engine import protocol as p
from engine.atomic import read_json, write_json
from engine.chat import ChatRenderer
from engine.config import HeroConfig
from engine.curriculum import GATE_WINDOW, Curriculum
from engine.evaluate import SkillEval, build_val_batch, skill_accuracy, validation_loss
from engine.gpu import POLL_SECONDS, GpuProbe
from engine.hero import LoadedHero, base_folder, load_hero, pick_device, trainable_params
from engine.history import load_history
from engine.ledger import Ledger
from engine.memory_plan import plan_memory
from engine.packing import pack_rows
from engine.progress import Progress
from engine.quest_keeper import GOLD_PER_QUEST, QuestKeeper, info_dict
from engine.quests import QuestQueue
from engine.savedir import SaveDir
from engine.server import ClientSession, EngineServer
from engine.stream import SkillStream
from engine.trainer import Trainer
from engine.vault import Vault, restore_rng
from skills.base import Problem
from skills.registry import get_skill

log = logging.getLogger("engine.worker")

STEP_EVENT_INTERVAL = 0.1  # seconds: StepCompleted is throttled to <= 10 per second
STATUS_INTERVAL = 2.0  # seconds between hero.json refreshes while training
HISTORY = 600  # chart points kept for a Snapshot
LOG_LINES = 40


def loot_info(row: dict[str, Any]) -> p.LootInfo:
    return p.LootInfo(
        step=row["step"],
        name=row["name"],
        time=row["time"],
        reason=row.get("reason", "auto"),
        train_loss=row.get("train_loss"),
        val_loss=row.get("val_loss"),
        lr=row.get("lr", 0.0),
        source=row.get("source", ""),
    )


class Worker:
    def __init__(
        self,
        save: SaveDir,
        config: HeroConfig,
        server: EngineServer,
        echo: Callable[[str], None] | None = None,
        echo_every: float = 5.0,
    ) -> None:
        self.save = save
        self.config = config
        self.server = server
        self.echo = echo  # headless progress lines (`realm train`)
        self.echo_every = echo_every
        self.started_at = time.time()
        self.state = "starting"
        self.paused = False
        self.stop_reason: str | None = None
        self.train_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.val_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.tokens_per_s = 0.0
        self.masked_fraction = 0.0
        self.last_watched: dict[str, Any] | None = None
        self.window_tokens = 0  # tokens since the last StepCompleted, for tokens/s
        self.window_start = self.last_emit = self.last_status = self.last_echo = time.monotonic()
        self.last_gpu_poll = 0.0
        self.memory_plan = ""

    # ------------------------------------------------------------------ start-up

    def start(self) -> None:
        cfg = self.config
        self.save.create()
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.ledger = Ledger(self.save.ledger)
        self.vault = Vault(self.save.root, self.ledger)
        for name in self.vault.clean_incomplete():
            self.note(f"Removed unfinished loot {name} left by a crash", "warning")
        resume = self.vault.newest()
        device = pick_device()
        self.gpu = GpuProbe(device.index or 0)
        self.gpu_stats = self.gpu.read()
        if cfg.mode == "full":
            folder, adapter = (resume.folder if resume else base_folder(cfg, self.save)), None
        else:  # the base stays frozen; loot holds only the adapters
            folder, adapter = base_folder(cfg, self.save), (resume.folder if resume else None)
        self.hero: LoadedHero = load_hero(folder, device, cfg.model_label, cfg.mode, cfg.lora, adapter)
        self.renderer = ChatRenderer(self.hero.tokenizer)
        skills = [get_skill(skill_id) for skill_id in cfg.game.skills]
        self.curriculum = Curriculum(skills, cfg.game.skills, cfg.game.rehearsal)
        if resume:
            self.curriculum.load(resume.meta.get("curriculum", {}))
        self.stream = SkillStream(self.curriculum.sources(), self.renderer, seed=cfg.train.seed)
        torch.manual_seed(cfg.train.seed)
        self._plan_memory()
        self.trainer = Trainer(self.hero.model, cfg.train, device)
        # The batch split actually used: out-of-memory recovery may change it mid-run.
        self.micro_batch, self.grad_accum = cfg.train.micro_batch, cfg.train.grad_accum
        self.progress = Progress(xp_per_level=cfg.game.xp_per_level)
        if resume:
            self.trainer.load_state_dict(resume.trainer_state)
            restore_rng(resume.trainer_state["rng"])
            self.stream.position = resume.meta["data_position"]
            self.progress = Progress.from_dict(resume.meta["progress"], cfg.game.xp_per_level)
            batch = resume.meta.get("batch")
            if (
                batch
                and batch["micro_batch"] * batch["grad_accum"] == cfg.train.micro_batch * cfg.train.grad_accum
            ):
                self.micro_batch, self.grad_accum = batch["micro_batch"], batch["grad_accum"]
        self.keeper = QuestKeeper(
            QuestQueue(self.save.root),
            cfg,
            self.renderer,
            self.stream,
            skills,
            self.hero.model,
            device,
            self.ledger,
            self.note,
            self.server.broadcast,
        )
        self.keeper.start(resume.meta if resume else {}, resume.folder.name if resume else None)
        self._load_history(resume.meta["step"] if resume else 0)
        self.samples: dict[str, SkillEval] = {}
        self._build_eval_sets()
        status = read_json(self.save.status, {}) or {}
        self.last_watched = status.get("last_watched")
        where = f"step {self.progress.step} (loot {resume.folder.name})" if resume else "a fresh start"
        trainable = trainable_params(self.hero.model)
        mode = f", {cfg.mode} ({trainable / 1e6:.2f}M trainable)" if cfg.mode != "full" else ""
        self.note(f"DIO wakes on {device.type} at {where}: {self.hero.params / 1e6:.1f}M params{mode}")
        self._append_metric({"resumed_from": self.progress.step, "time": time.time()})
        self.state = "training"
        self.write_status()

    def _plan_memory(self) -> None:
        self.memory_plan, over = plan_memory(self.hero.model, self.hero.device, self.config)
        self.note(f"Memory plan: {self.memory_plan}")
        if over:
            self.note(
                "The estimate is over this GPU's memory: out-of-memory recovery will halve the "
                "micro-batch; a smaller seq_len or --mode lora/qlora would fit better",
                "warning",
            )

    def _build_eval_sets(self) -> None:
        """Static eval sets for each skill's current level, and a validation batch drawn
        from the same levels (eval-split seeds far from the eval set's indices)."""
        game = self.config.game
        self.eval_sets: dict[str, list[Problem]] = {}
        val: list[Problem] = []
        per_skill = max(1, game.val_examples // len(self.curriculum.tracks))
        for skill_id, track in self.curriculum.tracks.items():
            skill = self.curriculum.skills[skill_id]
            self.eval_sets[skill_id] = skill.eval_set(track.level, game.eval_problems or None)
            val += [skill.generate(track.level, 100_000 + i, "eval") for i in range(per_skill)]
        pad = self.hero.tokenizer.pad_token_id
        self.val_batch = build_val_batch(self.renderer, val, self.config.train.seq_len, pad)

    def skill_info(self, skill_id: str) -> p.SkillInfo:
        skill = self.curriculum.skills[skill_id]
        track = self.curriculum.tracks[skill_id]
        spec = skill.spec
        sample = self.samples.get(skill_id)
        return p.SkillInfo(
            id=skill.id,
            name=skill.name,
            icon=spec.icon,
            colour=spec.colour,
            level=track.level,
            max_level=skill.max_level,
            threshold=spec.threshold,
            gate_window=GATE_WINDOW,
            evals=tuple(track.evals),
            mastered=tuple(sorted(track.mastered)),
            sample_prompt=sample.sample.prompt if sample and sample.sample else "",
            sample_answer=sample.sample_answer if sample else "",
            sample_correct=sample.sample_correct if sample else False,
        )

    def _load_history(self, resumed_step: int) -> None:
        train, val, lines = load_history(self.save, resumed_step, LOG_LINES)
        self.train_history.extend(train)
        self.val_history.extend(val)
        self.log_lines.extend(lines)

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        self.window_start = self.last_emit = self.last_status = self.last_echo = time.monotonic()
        self.window_tokens = 0
        pending_steps = 0
        while self.stop_reason is None:
            self.handle_commands(block=self.paused)
            if self.stop_reason is not None:
                break
            self.keeper.poll()
            if self.paused:
                continue
            result = self._train_step()
            if self.keeper.finished:
                self.complete_quest()
            pending_steps += 1
            now = time.monotonic()
            if now - self.last_emit >= STEP_EVENT_INTERVAL:
                self._emit_step(result, pending_steps, now)
                pending_steps = 0
            step = self.progress.step
            game = self.config.game
            if step % game.eval_every == 0:
                self.run_eval()
            if step % game.checkpoint_every == 0:
                self.take_loot("auto")
            if game.max_steps and step >= game.max_steps:
                self.stop_reason = "max_steps"
            if self.gpu.available and now - self.last_gpu_poll >= POLL_SECONDS:
                self.gpu_stats = self.gpu.read()
                self.server.broadcast(p.GpuTelemetry(self.gpu_stats))
                self.last_gpu_poll = now
            if now - self.last_status >= STATUS_INTERVAL:
                self.write_status()
                self.last_status = now
            if self.echo and now - self.last_echo >= self.echo_every:
                self.echo(self.progress_line())
                self.last_echo = now
        self.finish()
        return 0

    def _train_step(self) -> Any:
        cfg = self.config.train
        pad = self.hero.tokenizer.pad_token_id
        micro = [pack_rows(self.stream, self.micro_batch, cfg.seq_len, pad) for _ in range(self.grad_accum)]
        result = self.trainer.step(micro)
        if result.oom_splits:
            self._after_oom(result.oom_splits)
        levelled = self.progress.record_step(result.loss, result.tokens)
        self.masked_fraction = result.masked_fraction
        self.window_tokens += result.tokens
        smoothed = self.progress.smoothed_loss or result.loss
        self.train_history.append((self.progress.step, smoothed))
        self._append_metric(
            {
                "step": self.progress.step,
                "loss": round(result.loss, 6),
                "smoothed": round(smoothed, 6),
                "lr": result.lr,
                "grad_norm": round(result.grad_norm, 4),
                "tokens": result.tokens,
                "time": round(time.time(), 3),
            }
        )
        if levelled:
            level = self.progress.level
            self.note(f"LEVEL UP! DIO reached level {level}")
            self.server.broadcast(p.LevelledUp(level=level, step=self.progress.step))
        return result

    def _after_oom(self, splits: int) -> None:
        """Keep the smaller micro-batch the trainer fell back to, with more accumulation:
        the same rows per optimizer step (saved with loot, so a resume keeps it)."""
        factor = 2**splits
        old = (self.micro_batch, self.grad_accum)
        self.micro_batch = max(1, self.micro_batch // factor)
        self.grad_accum *= factor
        self.note(
            f"Out of memory at step {self.progress.step}: micro-batch {old[0]} × {old[1]} → "
            f"{self.micro_batch} × {self.grad_accum} accumulation (same {old[0] * old[1]} rows per step)",
            "warning",
        )
        self._append_metric(
            {
                "step": self.progress.step,
                "oom": {"from": list(old), "to": [self.micro_batch, self.grad_accum]},
            }
        )

    def _emit_step(self, result: Any, steps: int, now: float) -> None:
        elapsed = now - self.window_start
        if elapsed > 0:
            self.tokens_per_s = self.window_tokens / elapsed
        self.window_tokens = 0
        self.window_start = now
        self.last_emit = now
        self.server.broadcast(
            p.StepCompleted(
                step=self.progress.step,
                steps=steps,
                loss=result.loss,
                smoothed_loss=self.progress.smoothed_loss or result.loss,
                lr=result.lr,
                grad_norm=result.grad_norm,
                tokens_per_s=self.tokens_per_s,
                stats=self.progress.stats(),
                masked_fraction=result.masked_fraction,
                quest=self.keeper.live(),
            )
        )

    # ------------------------------------------------------------------ commands

    def handle_commands(self, block: bool) -> None:
        timeout: float | None = 0.25 if block else 0
        while True:
            item = self.server.next_command(timeout)
            if item is None:
                return
            client, command = item
            self.handle(client, command)
            timeout = 0  # drain the rest without waiting

    def handle(self, client: ClientSession, command: Any) -> None:
        if command is None or isinstance(command, p.Goodbye):
            if isinstance(command, p.Goodbye):
                client.said_goodbye = True
            if client.watcher and self.server.watchers() <= (0 if command is None else 1):
                self._mark_last_watched()
            return
        if isinstance(command, p.Hello):
            self._greet(client, command)
        elif not client.greeted:
            client.send(p.CommandRejected(type(command).__name__, "say Hello first"))
        elif isinstance(command, p.Pause):
            if not self.paused:
                self.paused = True
                self.state = "paused"
                self.note(f"Paused at step {self.progress.step}")
                self.write_status()
            # The loop only reads commands between steps, so by now stepping has stopped.
            self.server.broadcast(p.Paused(step=self.progress.step))
        elif isinstance(command, p.Resume):
            if self.paused:
                self.paused = False
                self.state = "training"
                self.note(f"Resumed at step {self.progress.step}")
                self.write_status()
            self.server.broadcast(p.Resumed(step=self.progress.step))
        elif isinstance(command, p.SaveNow):
            self.take_loot("manual")
        elif isinstance(command, p.RunEval):
            self.note(f"Evaluating on demand at step {self.progress.step}")
            self.run_eval()
        elif isinstance(command, p.Stop):
            self.stop_reason = "stop"
        elif isinstance(command, p.QuestCommand):
            self.keeper.command(client, command)
        else:
            client.send(p.CommandRejected(type(command).__name__, "unknown command"))

    def _greet(self, client: ClientSession, hello: p.Hello) -> None:
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
            client.send(self.snapshot())
            client.greeted = True
            return
        away = self._away_summary() if self.server.watchers() == 0 else None
        client.send(self.snapshot(away))
        client.greeted = True
        self.last_watched = None
        self.write_status()

    def _mark_last_watched(self) -> None:
        self.last_watched = {
            "time": time.time(),
            "step": self.progress.step,
            "level": self.progress.level,
        }
        self.write_status()

    def _away_summary(self) -> p.AwaySummary | None:
        seen = self.last_watched
        if not seen:
            return None
        loot = [r["step"] for r in self.ledger.live_loot() if r["time"] > seen["time"]]
        return p.AwaySummary(
            seconds=time.time() - seen["time"],
            steps_gained=self.progress.step - seen["step"],
            levels_gained=self.progress.level - seen["level"],
            loot_steps=tuple(loot),
            restarted=self.started_at > seen["time"],
        )

    def snapshot(self, away: p.AwaySummary | None = None) -> p.Snapshot:
        return p.Snapshot(
            protocol_version=p.PROTOCOL_VERSION,
            hero=self.config.name,
            model=self.config.model_label,
            device=self.hero.device.type,
            state=self.state,
            pid=os.getpid(),
            stats=self.progress.stats(),
            tokens_per_s=self.tokens_per_s,
            source=self.stream.label,
            train_losses=tuple(self.train_history),
            val_losses=tuple(self.val_history),
            loot=tuple(loot_info(r) for r in self.ledger.live_loot()),
            log=tuple(self.log_lines),
            masked_fraction=self.masked_fraction,
            params=self.hero.params,
            skills=tuple(self.skill_info(sid) for sid in self.curriculum.tracks),
            away=away,
            quests=self.keeper.board(),
            gpu=self.gpu_stats,
            memory_plan=self.memory_plan,
        )

    # ------------------------------------------------------------------ evals and loot

    def run_eval(self) -> None:
        """Validation loss, then each skill's static eval at its current level; the
        curriculum's gate may open (a skill level-up) from the results."""
        step = self.progress.step
        device = self.hero.device
        val_loss = validation_loss(self.hero.model, self.val_batch, device)
        self.progress.val_loss = val_loss
        self.val_history.append((step, val_loss))
        levelled: list[tuple[str, int]] = []
        for skill_id in list(self.curriculum.tracks):
            skill = self.curriculum.skills[skill_id]
            level = self.curriculum.tracks[skill_id].level
            result = skill_accuracy(self.hero.model, self.renderer, skill, self.eval_sets[skill_id], device)
            self.samples[skill_id] = result
            new_level = self.curriculum.record_eval(skill_id, result.accuracy, step)
            live = self.ledger.live_loot()
            self.ledger.record_eval(
                {
                    "step": step,
                    "skill": skill_id,
                    "level": level,
                    "accuracy": result.accuracy,
                    "problems": result.problems,
                    "val_loss": val_loss,
                    "loot": live[-1]["name"] if live else None,
                }
            )
            self.server.broadcast(
                p.EvalCompleted(step, val_loss, result.accuracy, result.problems, self.skill_info(skill_id))
            )
            if new_level is not None:
                levelled.append((skill_id, new_level))
        accuracies = [s.accuracy for s in self.samples.values()]
        self.progress.accuracy = sum(accuracies) / len(accuracies)
        self._append_metric(
            {
                "step": step,
                "val_loss": round(val_loss, 6),
                "acc": self.progress.accuracy,
                "skills": {k: v.accuracy for k, v in self.samples.items()},
            }
        )
        for skill_id, new_level in levelled:
            name = self.curriculum.skills[skill_id].name
            self.note(f"SKILL UP! {name} reached level {new_level} at step {step}")
            self.server.broadcast(p.SkillLevelledUp(skill_id, name, new_level, step))
        if levelled:
            # Same position, new mix: deterministic, so a resumed run replays it exactly.
            self.stream.sources = self.curriculum.sources()
            self._build_eval_sets()

    def complete_quest(self) -> None:
        """Gold, then loot (its metadata records the finished quest: a crash after it
        still settles the quest on restart), then the file moves to done/."""
        info = self.keeper.complete_info()
        self.progress.gold += GOLD_PER_QUEST
        self.stream.quest = None  # the loot below records no quest in progress
        loot = self.take_loot("quest", extra={"quest_finished": info_dict(info)})
        self.keeper.settle(info, loot.name)
        before = f"{info.loss_before:.3f}" if info.loss_before is not None else "?"
        after = f"{info.loss_after:.3f}" if info.loss_after is not None else "?"
        self.note(
            f"QUEST COMPLETE! {info.name}: {info.rows} rows × {info.epochs} epoch(s), "
            f"quest loss {before} → {after}, +{GOLD_PER_QUEST} gold"
        )
        self.write_status()

    def take_loot(self, reason: str, extra: dict[str, Any] | None = None) -> p.LootInfo:
        step = self.progress.step
        row = self.vault.save(
            step,
            self.hero.model,
            self.hero.tokenizer,
            self.trainer.state_dict(),
            meta={
                "data_position": self.stream.position,
                "progress": self.progress.to_dict(),
                "config": json.loads(self.config.to_json()),
                "curriculum": self.curriculum.to_dict(),
                "source": self.stream.label,
                "batch": {"micro_batch": self.micro_batch, "grad_accum": self.grad_accum},
                **self.keeper.meta(),
                **(extra or {}),
            },
            ledger_row={
                "reason": reason,
                "train_loss": self.progress.smoothed_loss,
                "val_loss": self.progress.val_loss,
                "lr": self.trainer.scheduler.get_last_lr()[0],
                "source": self.stream.label,
            },
        )
        loot = loot_info(row)
        for name in self.vault.prune(self.config.game.keep_auto_checkpoints):
            log.info("pruned old automatic loot %s", name)
        self.note(f"Loot! Checkpoint {loot.name} ({reason})")
        self.server.broadcast(p.CheckpointSaved(loot=loot))
        self.write_status()
        return loot

    # ------------------------------------------------------------------ finishing

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def finish(self) -> None:
        self.state = "stopping"
        self.keeper.stop()
        live = self.ledger.live_loot()
        last = live[-1]["step"] if live else 0  # step 0 needs no loot: it is the base model
        if last != self.progress.step:
            self.take_loot("stop")
        self.state = "stopped"
        self.note(f"DIO rests at step {self.progress.step} ({self.stop_reason})")
        self.write_status()
        live = self.ledger.live_loot()
        self.server.broadcast(
            p.Stopped(
                step=self.progress.step,
                last_loot_step=live[-1]["step"] if live else None,
                reason=self.stop_reason or "stop",
            )
        )
        if self.echo:
            self.echo(self.progress_line())

    # ------------------------------------------------------------------ records

    def note(self, text: str, level: str = "info") -> None:
        """A discrete happening: into the log file, events.jsonl, and every UI."""
        getattr(log, "warning" if level == "warning" else "info")(text)
        self.log_lines.append(text)
        with open(self.save.events, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), "level": level, "text": text}) + "\n")
        self.server.broadcast(p.LogLine(text=text, level=level))
        if self.echo and level != "info":
            self.echo(text)

    def _append_metric(self, row: dict[str, Any]) -> None:
        with open(self.save.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def status_dict(self) -> dict[str, Any]:
        live = self.ledger.live_loot()
        return {
            "hero": self.config.name,
            "model": self.config.model_label,
            "state": self.state,
            "pid": os.getpid(),
            "step": self.progress.step,
            "level": self.progress.level,
            "loss": self.progress.smoothed_loss,
            "val_loss": self.progress.val_loss,
            "acc": self.progress.accuracy,
            "gold": self.progress.gold,
            "tokens_per_s": round(self.tokens_per_s, 1),
            "device": self.hero.device.type,
            "last_loot_step": live[-1]["step"] if live else None,
            "loot": len(live),
            "updated_at": time.time(),
            "last_watched": self.last_watched,
            "masked_fraction": round(self.masked_fraction, 4),
            "skills": {
                sid: {"level": t.level, "evals": t.evals, "mastered": sorted(t.mastered)}
                for sid, t in self.curriculum.tracks.items()
            },
            "quest": info_dict(quest) if (quest := self.keeper.live()) else None,
            "gpu": asdict(self.gpu_stats),
            "memory_plan": self.memory_plan,
        }

    def write_status(self) -> None:
        self.keeper.write_progress()
        write_json(self.save.status, self.status_dict())

    def progress_line(self) -> str:
        stats = self.progress
        loss = f"{stats.smoothed_loss:.4f}" if stats.smoothed_loss is not None else "-"
        live = self.ledger.live_loot()
        loot = live[-1]["step"] if live else "-"
        acc = f"{stats.accuracy:.0%}" if stats.accuracy is not None else "-"
        return (
            f"step {stats.step} | level {stats.level} | loss {loss} | acc {acc} | "
            f"{self.tokens_per_s:,.0f} tok/s | {self.state} | last loot {loot}"
        )


def run_in_thread(save: SaveDir, config: HeroConfig) -> tuple[Connection, Worker, threading.Thread]:
    """An engine on a thread of this process, talking over a Pipe (tests, benchmarks):
    returns the UI's end of the pipe, the worker and its thread."""
    server = EngineServer()
    worker = Worker(save, config, server)
    worker.start()
    ui_end, engine_end = Pipe()
    server.attach(engine_end)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    return ui_end, worker, thread
