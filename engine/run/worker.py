"""The worker loop: the engine's main thread, read top to bottom.

start():  load the hero, resume from the newest loot, build the stream
run():    while not stopping:
              handle UI commands (block while paused)
              one optimizer step -> stats, metrics, throttled StepCompleted
              level-up? eval due? loot due? max steps?
          save loot, say Stopped
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from engine.evals.skill_evals import (
    SkillEval,
    answer_batches,
    build_val_batch,
    score_answers,
    validation_loss,
)
from engine.game.achievements import AchievementBook
from engine.game.grade import GradeBook
from engine.game.progress import GOLD_PER_LEVEL, GOLD_PER_QUEST, Progress
from engine.game.shop import Shop
from engine.model.fused import fused_norms
from engine.model.gpu import POLL_SECONDS, GpuProbe
from engine.model.hero import LoadedHero, base_folder, load_hero, pick_device, trainable_params
from engine.model.memory import checkpoints_activations, plan_memory, text_config
from engine.model.segments import CPU_BF16_ATTENTION_FROM, attention_of
from engine.model.tokenizer import BASE_CHAT_TEMPLATE
from engine.oracle.chat import LootCopies
from engine.protocol import messages as p
from engine.protocol.config import HeroConfig, SettingRefused
from engine.protocol.names import counted
from engine.protocol.savedir import SaveDir, ended_without_stopping
from engine.quests.commands import info_dict
from engine.quests.keeper import QuestKeeper
from engine.quests.queue import QuestQueue
from engine.run import campaign_work, commands, guard, report, spar_work, suite_work
from engine.run.host_memory import keep_freed_memory
from engine.run.idle_gpu import IdleGpuGate
from engine.run.report import Reporter
from engine.run.server import EngineServer
from engine.run.tasks import TaskBoard, TaskBody, run_to_end
from engine.run.threads import threads_for, usable_cores
from engine.store import commands as vault_commands
from engine.store.ledger import Ledger
from engine.store.vault import Resumable, Vault, is_disk_full, main_line, restore_rng
from engine.train import fit
from engine.train.chat import ChatRenderer
from engine.train.curriculum import Curriculum
from engine.train.packing import pack_rows
from engine.train.stream import SkillStream
from engine.train.team import Team
from engine.train.trainer import StepResult, Trainer
from engine.train.watchdog import Watchdog
from skills.base import Problem, Skill
from skills.registry import get_skill, skill_problems

log = logging.getLogger("engine.run.worker")


class TeamBroken(Exception):
    """A collective failed during a step: another rank of a multi-GPU run died."""


RESTARTS = ("rewind", campaign_work.RESTART)  # stop reasons after which a fresh worker goes on
STATUS_INTERVAL = 2.0  # seconds between hero.json refreshes while training
COMMANDS_PER_STEP = 32  # commands handled between two training steps (the rest wait)


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
        # notes written while starting (before the progress is read) say step 0
        self.report = Reporter(
            save, server, echo, lambda: getattr(getattr(self, "progress", None), "step", 0)
        )
        self.note = self.report.note
        self.echo = echo  # headless progress lines (`realm train`)
        self.echo_every = echo_every
        self.started_at = time.time()
        self.state = "starting"
        self.paused = False
        self.stop_reason: str | None = None
        self.masked_fraction = 0.0
        self.overflows_in_a_row = 0  # fp16 steps whose scaled gradients overflowed (guard.after_step)
        self.last_watched: dict[str, Any] | None = None
        self.crashes = 0  # engines of this hero that died without stopping (hero.json keeps the count)
        self.last_status = self.last_echo = time.monotonic()
        self.last_gpu_poll = 0.0
        self.memory_plan = ""
        self.warnings: list[str] = []  # what went wrong at start-up (shown by `realm status`)
        self.loot_copies = LootCopies(config.oracle.loaded_loot)  # the Oracle's loaded loot
        # The latest eval, by skill; a loot taken at the same step carries it as its own.
        self.eval_step: int | None = None
        self.eval_results: dict[str, dict[str, Any]] = {}
        self.successor: Worker | None = None  # the worker a rewind started (tests follow it)
        self.team: Team | None = None  # the other ranks of a multi-GPU run (engine/train/team.py)
        self.tasks = TaskBoard(server.broadcast)
        self.told_capped: set[str] = set()  # skills whose level cap was announced this run
        self.watchdog = Watchdog(config.watchdog)  # the loot's own replaces it at start
        self.grade_book = GradeBook()
        self.stream_label = ""
        # The train/val gap on the current validation set (guard.after_eval).
        self.val_levels: tuple[tuple[str, int], ...] = ()
        self.val_watch: list[tuple[int, float, float]] = []
        self.overfit_told = False
        self.host_memory_kept = False  # engine/run/host_memory.py, set at start
        self.no_stop_loot = False  # a sharded run that lost a rank cannot save one

    # ------------------------------------------------------------------ start-up

    def _load_hero(self, folder: Path, device: torch.device, adapter: Path | None) -> None:
        cfg = self.config
        self.hero: LoadedHero = load_hero(folder, device, cfg.model_label, cfg.mode, cfg.lora, adapter)
        self.renderer = ChatRenderer(self.hero.tokenizer)
        if self.hero.tokenizer.chat_template == BASE_CHAT_TEMPLATE:
            self.note(
                "The model has no chat template of its own (a base model): DIO speaks ChatML turns "
                f"ending in {self.hero.tokenizer.eos_token}, saved with its loot"
            )

    def _skills_to_train(self) -> list[Skill]:
        for left_out in skill_problems():  # a user's skill that cannot load; the others train
            self.warn(str(left_out))
        skills = []
        for skill_id in campaign_work.skill_ids(self.config, self.campaign):
            try:
                skills.append(get_skill(skill_id))
            except KeyError as exc:  # a user's skill in the mix, gone or broken: say so, lose nothing
                out = "leave the campaign" if self.campaign else f"realm config set game.skills.{skill_id} 0"
                raise SettingRefused(f"{exc.args[0]}. Fix it, or take it out of training ({out})") from None
        return skills

    def start(self) -> None:
        cfg = self.config
        self.save.create()
        threads, lowered = threads_for(cfg.train.threads, usable_cores())
        if threads:
            torch.set_num_threads(threads)
        self.host_memory_kept = keep_freed_memory()  # fewer page faults a CPU step
        before = self.save.read_status()  # what the last engine left ({} if unreadable)
        self.ledger = Ledger(self.save.ledger)
        if self.ledger.moved_aside is not None:
            self.warn(
                f"The ledger could not be read ({self.ledger.problem}); it is kept as "
                f"{self.ledger.moved_aside.name} and rebuilt from the loot folders"
            )
        if lowered is not None:
            self.warn(lowered)
        self.vault = Vault(self.save.root, self.ledger)
        for level, text in self.vault.recover():
            self.note(text, level)
        resume, problems = self.vault.resume_point()
        for text in problems:
            self.warn(text)
        device = pick_device()
        self.gpu = GpuProbe(device.index or 0)
        self.gpu_stats = self.gpu.read()
        self.tasks.rule = IdleGpuGate(cfg.tasks, self.gpu, lambda: self.progress.step)
        if cfg.tasks.gpu_idle_only and not self.gpu.available:
            self.note("tasks.gpu_idle_only has no effect here: NVML sees no GPU")
        if cfg.mode == "full":
            folder, adapter = (resume.folder if resume else base_folder(cfg, self.save)), None
        else:  # the base stays frozen; loot holds only the adapters
            folder, adapter = base_folder(cfg, self.save), (resume.folder if resume else None)
        self._load_hero(folder, device, adapter)
        self.campaign = campaign_work.load(self, resume)
        skills = self._skills_to_train()
        caps = self._size_rows(skills)
        cfg = self.config  # seq_len and micro_batch are concrete from here on
        weights = campaign_work.weights(cfg, self.campaign)
        self.curriculum = Curriculum(skills, weights, cfg.game.rehearsal, caps)
        if resume:
            self.curriculum.load(resume.meta.get("curriculum", {}))
            self._check_levels_fit()
        self.stream = SkillStream(
            self.curriculum.sources(), self.renderer, seed=cfg.train.seed, max_tokens=cfg.train.seq_len
        )
        torch.manual_seed(cfg.train.seed)
        self._plan_memory()
        phase_start = self.campaign.state.phase_start if self.campaign else 0
        self.trainer = Trainer(
            self.hero.model,
            campaign_work.train_config(cfg.train, self.campaign),
            device,
            phase_start,
            self.team,
        )
        # The batch split actually used: out-of-memory recovery may change it mid-run.
        self.micro_batch, self.grad_accum = cfg.train.micro_batch, cfg.train.grad_accum
        self.progress = Progress(xp_per_level=cfg.game.xp_per_level)
        if resume:
            self._restore(resume)
        guard.start(self, resume.meta if resume else None, resume.folder.name if resume else None)
        self._brief_team(folder, adapter)
        self.grade_book = GradeBook.from_dict(resume.meta.get("grade_book") if resume else None)
        self.grade_book.uniform_loss = math.log(len(self.hero.tokenizer))
        self.stream_label = self.stream.label
        self.keeper = QuestKeeper(
            QuestQueue(self.save.root),
            cfg,
            self.renderer,
            self.stream,
            skills,
            self.hero,
            self.ledger,
            self.report,
        )
        self.keeper.start(resume.meta if resume else {}, resume.folder.name if resume else None)
        if self.campaign is not None:  # the rehearsal buffer reads quests through the keeper
            self.stream.sources = campaign_work.sources(self)
            self.stream_label = self.stream.label
            campaign_work.begin(self)
        died_at = self._report_a_crash(before, resume)
        self.report.forget_after(self.progress.step, resume.meta.get("metrics_offset") if resume else 0)
        self.report.load_history(self.progress.step)
        self.samples: dict[str, SkillEval] = {}
        self._build_eval_sets()
        self.last_watched = before.get("last_watched")
        self.crashes = int(before.get("crashes") or 0) + (died_at is not None)
        self._open_keepsakes()
        self.server.observers.append(self._achieve)
        if died_at is not None:
            self.unlocked(self.achievements.unlock("survived-crash"))
        where = f"step {self.progress.step} (loot {resume.folder.name})" if resume else "a fresh start"
        trainable = trainable_params(self.hero.model)
        mode = f", {cfg.mode} ({trainable / 1e6:.2f}M trainable)" if cfg.mode != "full" else ""
        self.note(
            f"{self.config.name.upper()} wakes on {device.type} at {where}: {self.hero.params / 1e6:.1f}M params{mode}"
        )
        self._log_speed_setup(device)
        self.report.metric({"resumed_from": self.progress.step, "time": time.time(), "died_at": died_at})
        self.state = "training"
        self.write_status()

    def _log_speed_setup(self, device: torch.device) -> None:
        """For a speed question: precision, attention, how many norms run engine/model's own code."""
        bf16 = self.trainer.autocast_dtype == torch.bfloat16
        cpu_bf16 = bf16 and device.type == "cpu"  # short attention upcast (engine/model/segments.py)
        precision = "bf16 autocast" if bf16 else "fp32"
        if self.trainer.scaler is not None:
            precision = "fp16 autocast, loss scaling"
        elif not bf16 and device.type == "cuda":  # a T4 or V100: bf16 would be emulated there
            precision += " (no bf16 units on this GPU: train.precision fp16 is faster here)"
        log.info(
            "precision: %s; attention: %s; fused RMSNorm: %d; freed host memory kept: %s",
            precision,
            attention_of(self.hero.model)
            + (f", fp32 below {CPU_BF16_ATTENTION_FROM} tokens" if cpu_bf16 else ""),
            fused_norms(self.hero.model),
            "yes" if self.host_memory_kept else "no",
        )

    def _open_keepsakes(self) -> None:
        """Achievements and the Market's wares: a damaged file is kept aside (and said so),
        never a reason not to start."""
        self.achievements = AchievementBook(self.save.achievements, lambda: self.progress.step)
        self.shop = Shop(self.save.shop)
        for warning in (self.achievements.warning, self.shop.warning):
            if warning:
                self.warn(warning)

    def _brief_team(self, folder: Path, adapter: Path | None) -> None:
        """The other ranks load what this rank loaded and take its exact state."""
        if self.team is None:
            return
        self.team.tell(
            {
                "op": "sync",
                "config": self.config,
                "folder": str(folder),
                "adapter": str(adapter) if adapter else None,
                "train": self.trainer.cfg,
                "first_step": self.trainer.first_step,
                "shard": self.team.shard,
                # the memory plan's choice (rank 0's, the fullest), for every rank
                "checkpointing": checkpoints_activations(self.hero.model),
            }
        )
        self.team.copy_state(self.hero.model, self.trainer)
        split = self.team.describe_split(self.micro_batch, self.grad_accum)
        self.note(f"Training on {self.team.world} ranks (rank 0 is this engine): {split}")
        if self.team.shard and self.config.train.compile:
            self.note("train.compile is off with --fsdp: the sharded model runs uncompiled", "warning")

    def _size_rows(self, skills: list[Any]) -> dict[str, int]:
        """Rows that hold every skill level whole (train/fit.py): auto seq_len and
        micro-batch made concrete; with a seq_len set by hand, each skill's last level that
        fits (the curriculum stops there, and says so)."""
        sizes = fit.cached_measure(skills, self.renderer, self.save.row_sizes)
        positions = getattr(text_config(self.hero.model.config), "max_position_embeddings", None)
        train = self.config.train
        too_long = fit.past_positions(train.seq_len, positions)
        if too_long:
            raise fit.RowsTooShort(too_long)
        seq_len = train.seq_len or fit.auto_seq_len(sizes, positions)
        caps = fit.level_caps(sizes, seq_len)
        for skill in skills:
            if caps[skill.id] == 0:
                raise fit.RowsTooShort(fit.too_short_message(sizes, skill.id, seq_len))
            if caps[skill.id] < skill.max_level:  # said again, as a warning, if DIO gets there
                self.note(fit.capped_message(sizes, skill.id, caps[skill.id], seq_len))
        self.row_sizes = sizes
        self.config = replace(self.config, train=fit.resolve_rows(train, seq_len))
        budgets = {s.id: s.spec.max_answer_tokens for s in skills}
        for size in fit.answer_overruns(sizes, budgets):
            self.warn(
                f"{size.skill.upper()} L{size.level} answers run to {size.longest_answer} tokens, over the "
                f"skill's max_answer_tokens ({budgets[size.skill]}): its evals would cut them"
            )
        return caps

    def _check_levels_fit(self) -> None:
        for skill_id, track in self.curriculum.tracks.items():
            if track.level > self.curriculum.caps[skill_id]:
                raise fit.RowsTooShort(
                    f"{self.config.name.upper()} is at {skill_id.upper()} L{track.level}, whose examples "
                    f"do not fit rows of "
                    f"{self.config.train.seq_len} tokens: set train.seq_len to 0 (automatic) or higher"
                )

    def _restore(self, resume: Resumable) -> None:
        cfg = self.config
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

    def _report_a_crash(self, before: dict[str, Any], resume: Resumable | None) -> int | None:
        """The last engine did not stop (kill -9, an error, a power cut): say where it died
        and how much is replayed. Returns the step it died at, or None."""
        if not ended_without_stopping(before.get("state")):
            return None
        died_at = max(int(before.get("step") or 0), self.save.last_logged_step())
        loot = f"loot {resume.meta['step']}" if resume else "the base model"
        replayed = died_at - self.progress.step
        self.warn(
            f"The engine died at step {died_at}; resuming from {loot} ({replayed} steps replayed)", "crash"
        )
        return died_at

    def warn(self, text: str, kind: str = "") -> None:
        """A warning the player must see: the log, a toast, and `realm status`."""
        self.warnings.append(text)
        self.note(text, "warning", kind)

    @property
    def shards(self) -> int:
        """The ranks the training state is sharded over (--fsdp); 1 when it is not."""
        return self.team.world if self.team is not None and self.team.shard else 1

    def _plan_memory(self) -> None:
        self.memory_plan, over = plan_memory(self.hero.model, self.hero.device, self.config, self.shards)
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

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        self.last_status = self.last_echo = time.monotonic()
        self.report.start_clock()
        while self.stop_reason is None:
            self.handle_commands(block=self.paused)
            if self.stop_reason is not None:
                break
            self.keeper.poll()
            if self.tasks.has_work(self.paused):
                self._task_slice()  # then commands again: a pause lands within a slice
                continue
            if self.paused or campaign_work.phase_over(self):
                continue
            result = self._step_or_stop()
            if result is None:
                break
            guard.after_step(self, result)
            if self.stop_reason in RESTARTS:  # the watchdog rolled back: a new worker takes over
                break
            if self.keeper.finished:
                self.complete_quest()
            now = time.monotonic()
            self.report.step_done(result.tokens, partial(self._step_event, result), now)
            self._on_schedule(self.progress.step)
            if self.gpu.available and now - self.last_gpu_poll >= POLL_SECONDS:
                self.gpu_stats = self.gpu.read()
                self.server.broadcast(p.GpuTelemetry(self.gpu_stats))
                self.last_gpu_poll = now
            self._refresh_status(now)
        self.finish()
        return 0

    def _on_schedule(self, step: int) -> None:
        """What falls due at this step: suites, evals (then their loot), loot, the end."""
        game = self.config.game
        loot_due = step % game.checkpoint_every == 0
        every = self.config.evals.every_steps
        if every and step % every == 0:
            suite_work.schedule_all(self, None)
        if step % game.eval_every == 0:
            self.schedule_eval(loot_after=loot_due)  # the loot waits for its scores
            campaign_work.after_eval_scheduled(self)
            spar_work.retire_stale(self)
        elif loot_due:
            self.take_loot("auto")
        if game.max_steps and step >= game.max_steps:
            self.stop_reason = "max_steps"

    def _achieve(self, event: Any) -> None:
        """Every event the engine sends passes here first: some earn an achievement."""
        if not isinstance(event, p.AchievementUnlocked | p.LogLine | p.StepCompleted | p.OracleToken):
            self.unlocked(self.achievements.earned(event))

    def unlocked(self, ids: list[str]) -> None:
        for info in self.achievements.infos():
            if info.id in ids:
                self.note(f"Achievement unlocked: {info.title} ({info.how})")
                self.server.broadcast(p.AchievementUnlocked(info))

    def _task_slice(self) -> None:
        info = self.tasks.run_slice(self.paused)
        if info is not None and info.state in ("done", "failed"):
            self.write_status()  # at once: while paused no training step would write it later
        else:
            self._refresh_status(time.monotonic())

    def _refresh_status(self, now: float) -> None:
        if now - self.last_status >= STATUS_INTERVAL:
            self.write_status()
            self.last_status = now
        if self.echo and now - self.last_echo >= self.echo_every:
            self.echo(report.progress_line(self))
            self.last_echo = now

    def _train_step(self) -> StepResult:
        started = time.monotonic()
        cfg = self.config.train
        pad = self.hero.tokenizer.pad_token_id
        micro = [pack_rows(self.stream, self.micro_batch, cfg.seq_len, pad) for _ in range(self.grad_accum)]
        if self.stream.label != self.stream_label:  # a level-up, a quest: new data, new history
            self.stream_label = self.stream.label
            self.watchdog.forget_history()
        if self.team is None:
            result = self.trainer.step(micro, guard.judge_for(self))
        else:  # every rank gets the whole batch and trains its share
            order = {
                "op": "step",
                "micro": micro,
                "train": self.trainer.cfg,
                "lr_scale": self.trainer.lr_scale,
            }
            try:
                self.team.tell(order)
                result = self.trainer.step(micro, guard.judge_for(self))
            except RuntimeError as exc:  # gloo / NCCL: a peer is gone
                raise TeamBroken(str(exc).splitlines()[0]) from exc
        if result.oom_splits:
            self._after_oom(result.oom_splits)
        if result.overflow:  # fp16: finding the loss scale skips a few early steps; later ones are rare
            log.info(
                "fp16 overflow at step %d: no update, loss scale now %g",
                self.progress.step + 1,
                self.trainer.loss_scale(),
            )
        levelled = self.progress.record_step(result.loss, result.tokens, time.monotonic() - started)
        if result.verdict is None:  # a step held back by the watchdog taught nothing
            self.grade_book.record_step(result.loss)
        self.masked_fraction = result.masked_fraction
        smoothed = self.progress.smoothed_loss or result.loss
        self.report.train_history.append((self.progress.step, smoothed))
        self.report.lr_history.append((self.progress.step, result.lr))
        if math.isfinite(result.grad_norm):  # an fp16 overflow's inf is no norm to chart
            self.report.grad_history.append((self.progress.step, result.grad_norm))
        self.report.metric(
            {
                "step": self.progress.step,
                "loss": round(result.loss, 6),
                "smoothed": round(smoothed, 6),
                "lr": result.lr,
                "grad_norm": round(result.grad_norm, 4) if math.isfinite(result.grad_norm) else None,
                "tokens": result.tokens,
                "time": round(time.time(), 3),
            }
        )
        if levelled:
            level = self.progress.level
            self.note(f"LEVEL UP! {self.config.name.upper()} reached level {level}, +{GOLD_PER_LEVEL} gold")
            self.server.broadcast(p.LevelledUp(level=level, step=self.progress.step))
        return result

    def _step_or_stop(self) -> StepResult | None:
        """One training step; None when another rank died (this one keeps what it has)."""
        try:
            return self._train_step()
        except TeamBroken as exc:
            self._rank_lost(exc)
            return None

    def _rank_lost(self, exc: TeamBroken) -> None:
        """The step that failed changed nothing here (the update comes after the last
        collective), so the weights and optimizer are those of the last finished step:
        the stop loot keeps them and the next start resumes from it. Sharded, the lost
        rank's part of the training state is gone with it: no stop loot; the next start
        resumes from the last loot."""
        self.trainer.optimizer.zero_grad(set_to_none=True)
        self.stop_reason = "a rank stopped"
        if self.trainer.sharded:
            self.no_stop_loot = True
            last = report.last_loot_step(self)
            self.warn(  # in `realm status` too: the steps since that loot will be trained again
                f"A training rank stopped ({exc}); its shard of the training state went with it, so "
                f"no loot can be saved at step {self.progress.step}. Start again to resume from "
                + (f"the loot at step {last}." if last else "the start."),
                kind="crash",
            )
            return
        self.note(
            f"A training rank stopped ({exc}); saving loot at step {self.progress.step} and stopping. "
            "Start again to resume from it.",
            "warning",
            kind="crash",
        )

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
        self.report.metric(
            {
                "step": self.progress.step,
                "oom": {"from": list(old), "to": [self.micro_batch, self.grad_accum]},
            }
        )

    def _step_event(self, result: StepResult, steps: int) -> p.StepCompleted:
        return p.StepCompleted(
            step=self.progress.step,
            steps=steps,
            loss=result.loss,
            smoothed_loss=self.progress.smoothed_loss or result.loss,
            lr=result.lr,
            grad_norm=result.grad_norm,
            tokens_per_s=self.report.tokens_per_s,
            stats=self.progress.stats(self.shop.spent),
            masked_fraction=result.masked_fraction,
            quest=self.keeper.live(),
        )

    # ------------------------------------------------------------------ commands

    def handle_commands(self, block: bool) -> None:
        """Commands waiting between two steps: at most COMMANDS_PER_STEP of them, so a
        flood of commands slows training by a bounded amount, never stops it."""
        timeout: float | None = 0.25 if block else 0
        for _ in range(COMMANDS_PER_STEP):
            item = self.server.next_command(timeout)
            if item is None:
                return
            client, command = item
            try:
                commands.handle(self, client, command)
            finally:
                client.done_with(command)
            timeout = 0  # drain the rest without waiting

    def set_paused(self, paused: bool) -> None:
        if self.paused != paused:
            self.paused = paused
            self.state = "paused" if paused else "training"
            self.note(f"{'Paused' if paused else 'Resumed'} at step {self.progress.step}")
            self.write_status()

    # ------------------------------------------------------------------ evals and loot

    def schedule_eval(self, asked: bool = False, loot_after: bool = False) -> p.TaskInfo:
        """An eval on the task board (run a batch at a time between commands)."""
        label = f"eval at step {self.progress.step:,}"
        return self.tasks.add("eval", label, self.eval_task(loot_after), asked=asked)

    def run_eval(self) -> str:
        """An eval, at once (tests; the loop schedules them)."""
        return run_to_end(self.eval_task(loot_after=False))

    def eval_task(self, loot_after: bool) -> TaskBody:
        """Validation loss, then each skill's static eval at its current level, a batch
        per slice; the curriculum's gate may open (a skill level-up) from the results.
        ``loot_after``: the automatic loot due at this step is taken once the scores are
        in, so it carries them as its own."""
        step = self.progress.step
        device = self.hero.device
        total = sum(len(problems) for problems in self.eval_sets.values())
        val_loss = validation_loss(self.hero.model, self.val_batch, device)
        self.progress.val_loss = val_loss
        self.report.val_history.append((step, val_loss))
        guard.after_eval(self, step, val_loss)
        yield 0, total
        done = 0
        levelled: list[tuple[str, int]] = []
        self.eval_step, self.eval_results = step, {}
        news = []
        for skill_id in list(self.curriculum.tracks):
            skill = self.curriculum.skills[skill_id]
            level = self.curriculum.tracks[skill_id].level
            problems = self.eval_sets[skill_id]
            answers: list[str] = []
            for batch in answer_batches(
                self.hero.model, self.renderer, problems, device, skill.spec.max_answer_tokens
            ):
                answers += batch
                done += len(batch)
                yield done, total
            result = score_answers(skill, problems, answers)
            self.samples[skill_id] = result
            new_level = self.curriculum.record_eval(skill_id, result.accuracy, step)
            self.grade_book.record_eval(skill_id, level, result.accuracy, result.readable)
            if self.curriculum.held_at_cap(skill_id) and skill_id not in self.told_capped:
                self.told_capped.add(skill_id)
                cap = self.curriculum.caps[skill_id]
                self.warn(fit.capped_message(self.row_sizes, skill_id, cap, self.config.train.seq_len))
            scores = {"accuracy": result.accuracy, "level": level, "problems": result.problems, "step": step}
            self.eval_results[skill_id] = scores
            self.report.skill_history.append(p.SkillPoint(step, skill_id, level, result.accuracy))
            # The live weights at this step; a loot saved at this step links to it by
            # carrying the same scores (never "the newest loot": other weights).
            self.ledger.record_eval({"skill": skill_id, "val_loss": val_loss, **scores})
            info = report.skill_info(self, skill_id)
            self.server.broadcast(
                p.EvalCompleted(step, val_loss, result.accuracy, result.problems, info, level)
            )
            gate = (
                f"gate passed: level {new_level}"
                if new_level is not None
                else f"{info.gate_passes} of {info.gate_window} ≥ {info.threshold:.0%}"
            )
            news.append(f"{skill_id.upper()} L{level}: {result.accuracy:.0%} ({gate})")
            if new_level is not None:
                levelled.append((skill_id, new_level))
        accuracies = [s.accuracy for s in self.samples.values()]
        self.progress.accuracy = sum(accuracies) / len(accuracies)
        grade = self.grade_book.grade(len(self.watchdog.rollbacks))
        self.progress.grade = grade.short if grade else ""
        self.report.metric(
            {
                "step": step,
                "val_loss": round(val_loss, 6),
                "acc": self.progress.accuracy,
                "skills": {k: v.accuracy for k, v in self.samples.items()},
                "levels": {k: v["level"] for k, v in self.eval_results.items()},
                "grade": grade.to_dict() if grade else None,
            }
        )
        summary = " · ".join(news) + f" · val loss {val_loss:.3f}"
        self.note(f"Eval at step {step}: {summary}")
        for skill_id, new_level in levelled:
            name = self.curriculum.skills[skill_id].name
            self.note(f"SKILL UP! {name} reached level {new_level} at step {step}")
            self.server.broadcast(p.SkillLevelledUp(skill_id, name, new_level, step))
        if levelled:
            # Same position, new mix: deterministic, so a resumed run replays it exactly.
            self.stream.sources = campaign_work.sources(self)
            self._build_eval_sets()
        if loot_after and self.progress.step == step:
            self.take_loot("auto")
        return summary

    def complete_quest(self) -> None:
        """Gold, then loot (its metadata records the finished quest: a crash after it
        still settles the quest on restart), then the file moves to done/."""
        info = self.keeper.complete_info(self.progress.step)
        self.progress.gold += GOLD_PER_QUEST
        self.stream.quest = None  # the loot below records no quest in progress
        loot = self.take_loot("quest", extra={"quest_finished": info_dict(info)})
        done = self.keeper.settle(info, loot.name if loot else None)
        spar_work.after_quest(self, done)  # a sparring quest: re-test its mistakes
        before = f"{info.loss_before:.3f}" if info.loss_before is not None else "?"
        after = f"{info.loss_after:.3f}" if info.loss_after is not None else "?"
        self.note(
            f"QUEST COMPLETE! {info.name}: {counted(info.rows, 'row')} × {counted(info.epochs, 'epoch')}, "
            f"quest loss {before} → {after}, +{GOLD_PER_QUEST} gold"
        )
        self.write_status()

    def take_loot(
        self, reason: str, extra: dict[str, Any] | None = None, prune: bool = True
    ) -> p.LootInfo | None:
        """Save a checkpoint, then apply the retention policy. None when it could not be
        written (a full disk): the loot before it is untouched, and training pauses
        until the player frees space."""
        step = self.progress.step
        try:
            row = self._save_loot(step, reason, extra)
        except RuntimeError as exc:  # sharded: a rank died while the optimizer state was gathered
            if not self.trainer.sharded:
                raise
            self._rank_lost(TeamBroken(str(exc).splitlines()[0]))
            return None
        except OSError as exc:
            what = "disk full" if is_disk_full(exc) else f"cannot write ({exc.strerror or exc})"
            self.warn(f"{what}: loot not saved at step {step}; the last loot is untouched")
            if self.stop_reason is None:
                self.set_paused(True)
                self.note("Training is paused: free some space, then press space to go on", "warning")
                self.server.broadcast(p.Paused(step=step))
            return None
        loot = vault_commands.loot_info(row)
        self.note(f"Loot! Checkpoint {loot.name} ({reason})")
        if reason == "auto" and self.config.evals.at_loot:
            suite_work.schedule_all(self, loot.name)  # its scores become the loot's metrics
        self.server.broadcast(p.CheckpointSaved(loot=loot))
        if prune:
            for verdict in self.vault.prune(self.config.vault):
                self.loot_copies.forget(verdict.name)
                self.note(f"pruned loot {verdict.name}: {verdict.delete_reason}")
            self.server.broadcast(vault_commands.listed(self.vault, self.config.vault))
        self.write_status()
        return loot

    def _save_loot(self, step: int, reason: str, extra: dict[str, Any] | None) -> dict[str, Any]:
        evaluated = self.eval_step == step  # else: "not evaluated" until someone asks
        return self.vault.save(
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
                "metrics_offset": self.report.metrics_offset(),
                "watchdog": self.watchdog.to_dict(),
                "grade_book": self.grade_book.to_dict(),
                **self.keeper.meta(),
                **campaign_work.state_meta(self),
                **(extra or {}),
            },
            ledger_row={
                "reason": reason,
                "train_loss": self.progress.smoothed_loss,
                "val_loss": self.progress.val_loss if evaluated else None,
                "evals": dict(self.eval_results) if evaluated else {},
                "lr": self.trainer.scheduler.get_last_lr()[0],
                "source": self.stream.label,
                "grade": self.progress.grade,
                "pinned": False,
            },
        )

    # ------------------------------------------------------------------ finishing

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def finish(self) -> None:
        self.state = "stopping"
        restarting = self.stop_reason in RESTARTS
        if not restarting:
            # A scheduled eval may open a skill gate: finish it, so the stop loot holds
            # what an uninterrupted run would have (questions asked are dropped).
            self.tasks.queue = type(self.tasks.queue)(t for t in self.tasks.queue if not t.asked)
            self.tasks.drain()
        self.keeper.stop()
        live = main_line(self.ledger.live_loot())  # loot set aside at this step is not this line's
        last = live[-1]["step"] if live else 0  # step 0 needs no loot: it is the base model
        if last != self.progress.step and not restarting and not self.no_stop_loot:  # a rewind saved already
            self.take_loot("stop")
        if restarting:  # a new worker takes over at once: no Stopped
            why = "Rewinding" if self.stop_reason == "rewind" else "Next campaign phase"
            self.note(f"{why}: {self.config.name.upper()} leaves step {self.progress.step}")
            self.state = "stopped"  # a clean end: the next start must not report a crash
            self.write_status()
            return
        self.state = "stopped"
        self.note(f"{self.config.name.upper()} rests at step {self.progress.step} ({self.stop_reason})")
        self.write_status()
        self.server.broadcast(
            p.Stopped(
                step=self.progress.step,
                last_loot_step=report.last_loot_step(self),
                reason=self.stop_reason or "stop",
            )
        )
        if self.echo:
            self.echo(report.progress_line(self))

    def release(self) -> None:
        """Let go of the model, its training state and the Oracle's loot copies once this
        worker has ended: whoever still holds the worker (the engine's main, the server's
        observers) must not keep a second model in memory while a rewind's successor
        loads its own (the GPU's memory doubled at every rewind before)."""
        for name in ("trainer", "hero", "keeper", "loot_copies", "samples"):
            self.__dict__.pop(name, None)

    # ------------------------------------------------------------------ records

    def write_status(self) -> None:
        report.write_status(self)


def run_with_rewinds(worker: Worker, on_new: Callable[[Worker], None] | None = None) -> int:
    """Run the loop; after a rewind, a fresh worker starts from the loot (everything a
    start reads, from the weights to the quest board, comes from it) and every UI gets
    its Snapshot. ``on_new`` sees each new worker (signal handlers, tests)."""
    while True:
        code = worker.run()
        if worker.stop_reason not in RESTARTS:
            return code
        team = worker.team
        worker.release()
        worker = Worker(worker.save, worker.config, worker.server, worker.echo, worker.echo_every)
        worker.team = team
        if on_new is not None:
            on_new(worker)
        gc.collect()  # the old model's memory, before the new one loads
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        worker.start()
        worker.server.broadcast(report.snapshot(worker))


def run_in_thread(save: SaveDir, config: HeroConfig) -> tuple[Connection, Worker, threading.Thread]:
    """An engine on a thread of this process, talking over a Pipe (tests, benchmarks):
    returns the UI's end of the pipe, the first worker and its thread (after a rewind
    ``worker.successor`` is the one training)."""
    server = EngineServer()
    worker = Worker(save, config, server)
    worker.start()
    ui_end, engine_end = Pipe()
    server.attach(engine_end)

    def follow(new: Worker) -> None:
        last = worker
        while last.successor is not None:
            last = last.successor
        last.successor = new

    thread = threading.Thread(target=run_with_rewinds, args=(worker, follow), name="worker", daemon=True)
    thread.start()
    return ui_end, worker, thread
