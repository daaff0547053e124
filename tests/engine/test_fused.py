"""The hand-written RMSNorm (engine/model/fused.py) gives the model's own outputs and
gradients, is switched on only where it computes the same thing, and leaves weights and
saved folders as they were."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

from engine.model.fused import RMSNormFunction, fuse_rms_norms, fused_norms, unfuse_rms_norms
from engine.model.hero import load_hero
from engine.protocol.config import LoraConfig


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((2, 7, 64), torch.float32), ((2, 7, 3, 16), torch.float32), ((3, 5, 32), torch.bfloat16)],
)
def test_the_function_matches_the_models_norm(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    norm = Qwen3RMSNorm(shape[-1], eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()  # a trained norm: not all ones
    x = (torch.randn(shape) * 4 + 1).to(dtype).requires_grad_()
    grad = torch.randn(shape)
    theirs = norm(x)
    theirs.backward(grad.to(theirs.dtype))
    their_grads = x.grad.clone(), norm.weight.grad.clone()  # type: ignore[union-attr]
    x.grad, norm.weight.grad = None, None
    ours = RMSNormFunction.apply(x, norm.weight, 1e-6)
    ours.backward(grad.to(ours.dtype))
    assert ours.dtype == theirs.dtype
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(ours, theirs, rtol=tolerance, atol=tolerance)
    assert torch.allclose(x.grad, their_grads[0], rtol=tolerance, atol=tolerance)  # type: ignore[arg-type]
    # theirs multiplies by the normalised input rounded to x's dtype, ours by the float32 one
    weight_tolerance = 1e-4 if dtype == torch.float32 else 2e-2
    assert torch.allclose(norm.weight.grad, their_grads[1], rtol=weight_tolerance, atol=weight_tolerance)  # type: ignore[arg-type]


def test_a_switched_model_gives_the_same_logits_and_gradients(hatchling_dir: Path) -> None:
    plain = AutoModelForCausalLM.from_pretrained(hatchling_dir, attn_implementation="sdpa")
    with torch.no_grad():  # norms away from their initial ones, so a wrong weight term shows
        for name, param in plain.named_parameters():
            if "norm" in name:
                param.normal_(1.0, 0.3)
    fused = copy.deepcopy(plain)
    layers = plain.config.num_hidden_layers
    # Qwen3: input, post-attention, q and k norms in each layer, and the final one
    rng = torch.get_rng_state()
    assert fuse_rms_norms(fused) == fused_norms(fused) == 4 * layers + 1
    assert torch.equal(torch.get_rng_state(), rng)  # a resumed run replays the same draws
    keys = list(plain.state_dict())
    ids = torch.randint(0, plain.config.vocab_size, (2, 24))
    for model in (plain, fused):
        model(input_ids=ids, labels=ids).loss.backward()
    assert torch.allclose(fused(input_ids=ids).logits, plain(input_ids=ids).logits, atol=1e-5)
    for (name, a), b in zip(plain.named_parameters(), fused.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5), name  # type: ignore[arg-type]
    assert list(fused.state_dict()) == keys  # saved folders are unchanged
    assert fuse_rms_norms(fused) == 0  # not switched twice
    assert unfuse_rms_norms(fused) == 4 * layers + 1 and fused_norms(fused) == 0


class OffsetRMSNorm(torch.nn.Module):
    """Gemma's variant: scales by 1 + weight. Same attributes, another result."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(dim))
        self.eps = 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1.0 + self.weight)


def test_a_norm_that_computes_something_else_keeps_its_own_forward() -> None:
    model = torch.nn.Sequential(OffsetRMSNorm(16), Qwen3RMSNorm(16))
    assert fuse_rms_norms(model) == 1
    assert "forward" not in vars(model[0]) and "forward" in vars(model[1])
    x = torch.randn(2, 16)
    assert torch.allclose(model[0](x), OffsetRMSNorm.forward(model[0], x))


def test_norms_without_real_weights_are_left_alone() -> None:
    with torch.device("meta"):  # how a model looks before accelerate places its weights
        model = torch.nn.Sequential(Qwen3RMSNorm(16))
    assert fuse_rms_norms(model) == 0 and "forward" not in vars(model[0])


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_every_loaded_hero_trains_with_it(hatchling_dir: Path, mode: str) -> None:
    hero = load_hero(hatchling_dir, torch.device("cpu"), "t", mode=mode, lora=LoraConfig(dropout=0.0))
    assert fused_norms(hero.model) == 4 * hero.model.config.num_hidden_layers + 1
    ids = torch.randint(0, 500, (2, 16))
    hero.model(input_ids=ids, labels=ids).loss.backward()
    norms = [p for n, p in hero.model.named_parameters() if "norm" in n]
    # full: the norms learn; lora: they are frozen and get no gradient at all
    assert all((p.grad is not None) == (mode == "full") for p in norms)
