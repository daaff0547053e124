"""train.precision: bf16 autocast wherever bf16 runs at full speed (a GPU that has it, a CPU
with AVX512_BF16 or AMX units), fp32 elsewhere; an explicit bf16 that would be emulated
is refused with a message saying why."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.model.hero import has_bf16
from engine.protocol.config import TrainConfig
from engine.train.trainer import pick_precision

CPU = torch.device("cpu")


def _cpu_units(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(("avx512_bf16", "amx"), [(True, False), (False, True), (True, True)])
def test_auto_picks_bf16_on_a_cpu_with_bf16_units(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool
) -> None:
    _cpu_units(monkeypatch, avx512_bf16, amx)
    assert has_bf16(CPU)
    assert pick_precision(TrainConfig(), CPU) == torch.bfloat16
    assert pick_precision(TrainConfig(precision="bf16"), CPU) == torch.bfloat16
    assert pick_precision(TrainConfig(precision="fp32"), CPU) is None


def test_a_cpu_without_bf16_units_trains_in_fp32_and_refuses_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_units(monkeypatch, False, False)
    assert not has_bf16(CPU)
    assert pick_precision(TrainConfig(), CPU) is None
    with pytest.raises(ValueError, match="AVX512_BF16 or AMX"):
        pick_precision(TrainConfig(precision="bf16"), CPU)


def test_a_torch_without_the_checks_counts_as_no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert not has_bf16(CPU)


@pytest.mark.parametrize(("major", "expected"), [(7, False), (8, True), (9, True)])
def test_a_gpu_that_would_emulate_bf16_trains_in_fp32(
    monkeypatch: pytest.MonkeyPatch, major: int, expected: bool
) -> None:
    """torch's is_bf16_supported() says yes on a T4 or V100 (7.x) by default: it counts
    emulation. Only a GPU with bf16 units (8.0 on) gets bf16 autocast on auto."""

    def supported(including_emulation: bool = True) -> bool:  # torch's rule, on a fake card
        return major >= 8 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    cuda = torch.device("cuda")
    assert has_bf16(cuda) is expected
    assert pick_precision(TrainConfig(), cuda) == (torch.bfloat16 if expected else None)
    if not expected:
        with pytest.raises(ValueError, match="precision bf16 needs a GPU"):
            pick_precision(TrainConfig(precision="bf16"), cuda)


def test_fp16_is_refused_where_it_would_be_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)
    with pytest.raises(ValueError, match="this CPU would emulate it"):
        pick_precision(TrainConfig(precision="fp16"), CPU)
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: True)  # Granite Rapids
    assert pick_precision(TrainConfig(precision="fp16"), CPU) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_precision(TrainConfig(precision="fp16"), torch.device("cuda")) == torch.float16


def test_has_bf16_matches_what_the_cpu_says_it_has() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo here")
    flags = set(cpuinfo.read_text().split())
    assert has_bf16(CPU) == bool({"avx512_bf16", "amx_bf16", "amx_tile"} & flags)


def test_a_bf16_autocast_step_on_a_cpu_learns_like_fp32(hatchling_dir: Path) -> None:
    from engine.bench.speed import examples, pool_size
    from engine.model.hero import load_hero
    from engine.train.chat import ChatRenderer
    from engine.train.packing import ListSource, pack_rows
    from engine.train.trainer import Trainer

    losses: dict[str, list[float]] = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        hero = load_hero(hatchling_dir, CPU, "t")
        pool = examples(ChatRenderer(hero.tokenizer), pool_size(2, 128, 12), seed=1, seq_len=128)
        source = ListSource(pool)
        cfg = TrainConfig(micro_batch=2, seq_len=128, warmup_steps=0, lr=3e-3)
        trainer = Trainer(hero.model, cfg, CPU)
        # forced, so the test runs on a CPU without bf16 units too (emulated there: slower)
        trainer.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        losses[precision] = [
            trainer.step([pack_rows(source, 2, 128, hero.tokenizer.pad_token_id)]).loss for _ in range(12)
        ]
    fp32, bf16 = losses["fp32"], losses["bf16"]
    assert bf16 != fp32  # autocast really changed the arithmetic
    assert abs(bf16[0] - fp32[0]) < 0.02 * fp32[0]  # the same model on the same batch
    assert bf16[-1] < bf16[0] * 0.8 and abs(bf16[-1] - fp32[-1]) < 0.1 * fp32[0]


def test_the_output_layer_sees_few_shapes_whatever_the_target_count(hatchling_dir: Path) -> None:
    """Under bf16 autocast on a CPU, oneDNN caches a kernel per matmul shape: a new target
    count every step grew the process ~5 MB a step. Target rows are padded to a multiple of
    TARGET_ROW_MULTIPLE (ignored targets), and the loss is unchanged by the padding."""
    import torch.nn.functional as F

    from engine.bench.speed import examples
    from engine.model.hero import load_hero
    from engine.train.chat import ChatRenderer
    from engine.train.packing import IGNORE, ListSource, pack_rows
    from engine.train.trainer import TARGET_ROW_MULTIPLE, token_loss_sum

    hero = load_hero(hatchling_dir, CPU, "t")
    head = hero.model.get_output_embeddings()
    rows_seen: list[int] = []
    head.register_forward_hook(lambda _m, args, _o: rows_seen.append(args[0].shape[0]))
    source = ListSource(examples(ChatRenderer(hero.tokenizer), 60, seed=3, seq_len=128))
    counts = set()
    with torch.no_grad():
        for _ in range(6):
            batch = pack_rows(source, 2, 128, hero.tokenizer.pad_token_id)
            counts.add(batch.target_tokens)
            loss = token_loss_sum(hero.model, batch)
            logits = hero.model(
                input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False
            ).logits
            plain = F.cross_entropy(
                logits.view(-1, logits.size(-1)), batch.targets.view(-1), ignore_index=IGNORE, reduction="sum"
            )
            assert float(loss) == pytest.approx(float(plain), rel=1e-5)
    assert len(counts) > 1  # the batches really had different target counts
    padded = rows_seen[0::2]  # token_loss_sum's call, then the plain forward's (all rows)
    assert padded and all(rows % TARGET_ROW_MULTIPLE == 0 for rows in padded), padded


def test_bench_refuses_bf16_where_it_would_be_emulated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.bench import speed

    _cpu_units(monkeypatch, False, False)
    assert speed.main(["--precision", "bf16", "--no-peers", "--steps", "1"]) == 2
    assert "AVX512_BF16 or AMX" in capsys.readouterr().err


def _fp16_setup(hatchling_dir: Path, precision: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    from engine.bench.speed import examples, pool_size
    from engine.model.hero import load_hero
    from engine.train.chat import ChatRenderer
    from engine.train.packing import ListSource
    from engine.train.trainer import Trainer

    # This CPU emulates fp16 (the engine refuses it here): allowed, for the arithmetic only.
    monkeypatch.setattr("engine.train.trainer.has_fp16", lambda _device: True)
    torch.manual_seed(0)
    hero = load_hero(hatchling_dir, CPU, "t")
    source = ListSource(examples(ChatRenderer(hero.tokenizer), pool_size(2, 128, 12), seed=1, seq_len=128))
    cfg = TrainConfig(micro_batch=2, seq_len=128, warmup_steps=0, lr=3e-3, precision=precision)
    return hero, source, Trainer(hero.model, cfg, CPU)


def test_fp16_scales_the_loss_and_learns_like_fp32(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.precision fp16 (for GPUs without bf16 units: a T4, a V100): autocast to fp16
    with a loss scale, found as it trains; the same learning curve as fp32. Run on a CPU
    here (autocast and GradScaler work there too), so it needs no GPU to be checked."""
    from engine.train.packing import pack_rows

    losses: dict[str, list[float]] = {}
    for precision in ("fp32", "fp16"):
        hero, source, trainer = _fp16_setup(hatchling_dir, precision, monkeypatch)
        assert (trainer.scaler is not None) == (precision == "fp16")
        results = [trainer.step([pack_rows(source, 2, 128, hero.tokenizer.pad_token_id)]) for _ in range(12)]
        assert not any(r.overflow for r in results)
        losses[precision] = [r.loss for r in results]
    fp32, fp16 = losses["fp32"], losses["fp16"]
    assert fp16 != fp32  # autocast really changed the arithmetic
    assert abs(fp16[0] - fp32[0]) < 0.02 * fp32[0]
    assert fp16[-1] < fp16[0] * 0.8 and abs(fp16[-1] - fp32[-1]) < 0.1 * fp32[0]
    state = trainer.state_dict()
    assert state["scaler"]["scale"] == trainer.scaler.get_scale()  # saved with loot, so a resume keeps it


def test_an_fp16_overflow_skips_the_update_unjudged_and_lowers_the_scale(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scale too high for fp16 makes the gradients inf: that step changes no weight, the
    watchdog is not asked (an inf norm is the scale being found, not a sick run), and the
    scale halves. The next step trains; a resumed trainer takes the scale found."""
    from engine.run.main import fsdp_problem
    from engine.train.packing import pack_rows
    from engine.train.trainer import Trainer

    hero, source, trainer = _fp16_setup(hatchling_dir, "fp16", monkeypatch)
    trainer.scaler.load_state_dict({**trainer.scaler.state_dict(), "scale": 2.0**60})
    before = [p.detach().clone() for p in hero.model.parameters()]
    judged: list[float] = []

    def judge(loss: float, grad_norm: float) -> Any:
        judged.append(grad_norm)
        from engine.train.watchdog import OK, Verdict

        return Verdict(OK, "")

    pad = hero.tokenizer.pad_token_id
    skipped = trainer.step([pack_rows(source, 2, 128, pad)], judge)
    assert skipped.overflow and skipped.verdict is None and not judged
    assert math.isfinite(skipped.loss) and not math.isfinite(skipped.grad_norm)
    assert all(torch.equal(a, b) for a, b in zip(before, hero.model.parameters(), strict=True))
    assert trainer.scaler.get_scale() == 2.0**59
    trainer.scaler.load_state_dict({**trainer.scaler.state_dict(), "scale": 1024.0})
    trained = trainer.step([pack_rows(source, 2, 128, pad)], judge)
    assert not trained.overflow and judged == [trained.grad_norm]
    assert any(not torch.equal(a, b) for a, b in zip(before, hero.model.parameters(), strict=True))
    resumed = Trainer(hero.model, trainer.cfg, CPU)
    resumed.load_state_dict(trainer.state_dict())
    assert resumed.scaler is not None and resumed.scaler.get_scale() == 1024.0
    monkeypatch.setenv("WORLD_SIZE", "2")  # as under torchrun --gpus 2 --fsdp
    assert "fp16" in (fsdp_problem(True, "full", "fp16") or "") and fsdp_problem(True, "full", "bf16") is None


def test_an_fp16_loss_that_is_not_a_number_is_still_the_watchdogs(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.train import trainer as trainer_module
    from engine.train.packing import pack_rows
    from engine.train.watchdog import ROLLBACK, Verdict

    hero, source, trainer = _fp16_setup(hatchling_dir, "fp16", monkeypatch)
    real_loss = trainer_module.token_loss_sum
    monkeypatch.setattr(trainer_module, "token_loss_sum", lambda *a: real_loss(*a) * math.nan)
    judged: list[float] = []

    def judge(loss: float, grad_norm: float) -> Verdict:
        judged.append(loss)
        return Verdict(ROLLBACK, "not a number")

    result = trainer.step([pack_rows(source, 2, 128, hero.tokenizer.pad_token_id)], judge)
    assert not result.overflow and len(judged) == 1 and math.isnan(judged[0])
    assert result.verdict is not None and result.verdict.action == ROLLBACK


def test_fp16_survives_running_out_of_memory_after_the_unscale(
    hatchling_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of memory late in a step (in the clip, after the gradients were unscaled): the
    halved retry must not trip GradScaler's "unscale_() has already been called"."""
    from engine.train.packing import pack_rows

    hero, source, trainer = _fp16_setup(hatchling_dir, "fp16", monkeypatch)
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = []

    def clip_once_out_of_memory(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip_once_out_of_memory)
    scale = trainer.scaler.get_scale()
    result = trainer.step([pack_rows(source, 2, 128, hero.tokenizer.pad_token_id)])
    assert result.oom_splits == 1 and not result.overflow and math.isfinite(result.loss)
    assert trainer.scaler.get_scale() == scale and len(calls) == 2
