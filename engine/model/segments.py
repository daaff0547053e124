"""Attention over packed examples, one example at a time: ``sdpa_segments``.

A packed row holds several examples; with plain SDPA every row computes its whole
seq_len × seq_len score matrix and a block-diagonal mask throws most of it away (at 1024
tokens a row of 40-token examples keeps about 4% of it). Here the training step passes a
``SegmentPlan`` (from the rows' position resets) and each example is attended on its own:
the examples are gathered into a few batches of similar length (grouped by power of two,
each padded to its longest), each goes through ``scaled_dot_product_attention`` with
``is_causal``, and the outputs are scattered back. Same maths as the mask
(tests/engine/test_segments.py compares logits and gradients), a fraction of the work;
padding is not attended at all.

It is a transformers attention backend (``AttentionInterface``), so it sits inside any
model that dispatches attention through that interface (Llama, Qwen, Mistral, …). Without
a plan — ``generate()`` in evals and the Oracle, with its KV cache and left padding — it
is exactly transformers' SDPA. On a GPU with flash-attention 2 installed, heroes use that
instead (its varlen kernel does the same from the position resets).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

NAME = "sdpa_segments"
MIN_BUCKET = 16  # shorter examples share the 16-token bucket: tiny matmuls cost their overhead
SLOT_MULTIPLE = 8  # a bucket's examples are padded to its longest, rounded up to this
PAYS_FROM = 2  # segments are used when they compute at most half of the masked cells
# On a CPU, torch's flash-attention kernel is 1.5-6x slower in bf16 than in fp32 for short
# sequences (forward + backward, 16-160 tokens; even at 384, faster from 512 on: measured on
# a 2-core AVX512_BF16 EPYC, docs/benchmarks.md), so under bf16 autocast shorter attention
# runs in fp32 there and casts its output back. The matmuls around it stay bf16.
CPU_BF16_ATTENTION_FROM = 512


@dataclass(frozen=True)
class Bucket:
    examples: int
    length: int  # slots per example: the bucket's longest, rounded up to SLOT_MULTIPLE
    gather: torch.Tensor  # [examples · length] flat token index of each slot (padded ones repeat one)
    keep: torch.Tensor  # indices into those slots of the real tokens, in the plan's scatter order


@dataclass(frozen=True)
class SegmentPlan:
    """Where each packed example lies in the flattened [rows · seq_len] tokens."""

    buckets: tuple[Bucket, ...]
    scatter: torch.Tensor  # flat token index of every valid slot, buckets in order
    rows: int
    seq_len: int

    def to(self, device: torch.device | str) -> SegmentPlan:
        return SegmentPlan(
            tuple(Bucket(b.examples, b.length, b.gather.to(device), b.keep.to(device)) for b in self.buckets),
            self.scatter.to(device),
            self.rows,
            self.seq_len,
        )

    @property
    def tokens(self) -> int:
        return self.rows * self.seq_len

    @property
    def score_cells(self) -> int:
        """Query × key cells the buckets compute (before causal skipping): the work done."""
        return sum(b.examples * b.length**2 for b in self.buckets)

    @property
    def pays(self) -> bool:
        return _pays(self.rows, self.seq_len, self.score_cells)


def _pays(rows: int, seq_len: int, score_cells: int) -> bool:
    """Whether attending example by example beats one masked pass per row: gathering and
    scattering cost something, so it must save enough score cells. Measured forward +
    backward on this CPU with buckets padded to their longest (docs/benchmarks.md): cells
    ÷ 2.4 at 16 × 128 and 8 × 256, 7–10% faster eager and 4% compiled; ÷ 5 at 4 × 512, 26%;
    ÷ 10 at 2 × 1024, 1.5× (padded to powers of two then). A row that one example fills
    (÷ 1) only pays the overhead."""
    return rows * seq_len**2 >= PAYS_FROM * score_cells


def _bucket_length(n: int) -> int:
    return max(MIN_BUCKET, 1 << (n - 1).bit_length())


def _slots(size: int, members: list[tuple[int, int]]) -> int:
    """Slots per example in a bucket: its longest member rounded up, not the bucket's power
    of two (a bucket of 65–100-token examples attends 104 × 104, not 128 × 128)."""
    longest = max(n for _, n in members)
    return min(size, -(-longest // SLOT_MULTIPLE) * SLOT_MULTIPLE)


def spans(position_ids: torch.Tensor, row_tokens: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """(flat start, length) of every example: a new one starts where a position is 0.
    Tokens past a row's ``row_tokens`` are padding and belong to none."""
    seq_len = position_ids.size(1)
    found: list[tuple[int, int]] = []
    for row, positions in enumerate(position_ids.detach().cpu().tolist()):
        real = row_tokens[row] if row_tokens else seq_len
        starts = [t for t, p in enumerate(positions[:real]) if p == 0 or t == 0]
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else real
            found.append((row * seq_len + start, end - start))
    return found


def _by_bucket(position_ids: torch.Tensor, row_tokens: tuple[int, ...]) -> dict[int, list[tuple[int, int]]]:
    by_length: dict[int, list[tuple[int, int]]] = {}
    for start, length in spans(position_ids, row_tokens):
        by_length.setdefault(_bucket_length(length), []).append((start, length))
    return by_length


def plan_if_it_pays(position_ids: torch.Tensor, row_tokens: tuple[int, ...] = ()) -> SegmentPlan | None:
    """The training step's plan, or None where the masked pass is the better deal; decided
    from the examples' lengths before any index tensor is built (rows of one or two examples
    then cost one walk over the positions)."""
    by_length = _by_bucket(position_ids, row_tokens)
    rows, seq_len = position_ids.shape
    cells = sum(len(members) * _slots(size, members) ** 2 for size, members in by_length.items())
    return _plan(by_length, rows, seq_len) if _pays(rows, seq_len, cells) else None


def plan_segments(position_ids: torch.Tensor, row_tokens: tuple[int, ...] = ()) -> SegmentPlan:
    """The plan for a packed batch (built on the host from its positions)."""
    rows, seq_len = position_ids.shape
    return _plan(_by_bucket(position_ids, row_tokens), rows, seq_len)


def _plan(by_length: dict[int, list[tuple[int, int]]], rows: int, seq_len: int) -> SegmentPlan:
    buckets: list[Bucket] = []
    scatter: list[torch.Tensor] = []
    for size in sorted(by_length):
        members = by_length[size]
        slots = _slots(size, members)
        starts = torch.tensor([s for s, _ in members])
        lengths = torch.tensor([n for _, n in members])
        offsets = torch.arange(slots)
        valid = offsets[None, :] < lengths[:, None]
        # a padded slot reads its example's first token: any real index will do, as causal
        # attention never lets a real token see the slots after it
        gather = (starts[:, None] + torch.where(valid, offsets[None, :], 0)).flatten()
        keep = valid.flatten().nonzero().flatten()
        buckets.append(Bucket(len(members), slots, gather, keep))
        scatter.append(gather[keep])
    flat = torch.cat(scatter) if scatter else torch.zeros(0, dtype=torch.long)
    return SegmentPlan(tuple(buckets), flat, rows, seq_len)


def segment_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    segments: SegmentPlan | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The attention backend. query [batch, heads, q_len, dim], key/value [batch,
    kv_heads, kv_len, dim]; returns [batch, q_len, heads, dim] like every backend."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, _, q_len, _ = query.shape
    usable = (
        segments is not None
        and key.size(2) == q_len  # no KV cache
        and segments.tokens == rows * q_len
        and kwargs.get("sliding_window") is None
        and kwargs.get("softcap") is None
    )
    if not usable:
        if not (module.training and _upcast(query, key.size(2))):
            return sdpa_attention_forward(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
            )
        if attention_mask is not None and attention_mask.is_floating_point():
            attention_mask = attention_mask.float()
        with torch.autocast("cpu", enabled=False):
            out, weights = sdpa_attention_forward(
                module, query.float(), key.float(), value.float(), attention_mask, dropout=dropout,
                scaling=scaling, **kwargs,
            )  # fmt: skip
        return out.to(query.dtype), weights
    assert segments is not None
    return _attend_segments(module, query, key, value, dropout, scaling, segments), None


# Outside torch.compile's graph (train.compile): the plan's shapes change with every batch,
# and tracing them recompiles per batch (1,006 tokens/s against 4,473 with this break, at
# 2 × 1024 on this CPU). The layers around it stay compiled.
@torch.compiler.disable
def _attend_segments(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    dropout: float,
    scaling: float | None,
    segments: SegmentPlan,
) -> torch.Tensor:
    rows, heads, q_len, dim = query.shape
    kv_heads = key.size(1)
    q = query.transpose(1, 2).reshape(rows * q_len, heads, dim)
    k = key.transpose(1, 2).reshape(rows * q_len, kv_heads, dim)
    v = value.transpose(1, 2).reshape(rows * q_len, kv_heads, dim)
    pieces = []
    for b in segments.buckets:
        upcast = _upcast(query, b.length)
        dtype = torch.float32 if upcast else query.dtype
        with torch.autocast("cpu", enabled=False) if upcast else contextlib.nullcontext():
            out = F.scaled_dot_product_attention(
                _gathered(q, b, dtype),
                _gathered(k, b, dtype),
                _gathered(v, b, dtype),
                dropout_p=dropout if module.training else 0.0,
                is_causal=True,
                scale=scaling,
                enable_gqa=kv_heads != heads,
            )
        if upcast:
            out = out.to(query.dtype)
        pieces.append(out.transpose(1, 2).reshape(b.examples * b.length, heads, dim).index_select(0, b.keep))
    # padding tokens (in no segment) get zeros: they carry no target and nothing reads them
    merged = q.new_zeros(rows * q_len, heads, dim)
    if pieces:
        merged = merged.index_copy(0, segments.scatter, torch.cat(pieces))
    return merged.view(rows, q_len, heads, dim)


def _gathered(tokens: torch.Tensor, b: Bucket, dtype: torch.dtype) -> torch.Tensor:
    """A bucket's examples from the flat [tokens, heads, dim]: [examples, heads, length, dim].
    index_select rather than fancy indexing: its backward is an index_add, not the slower
    accumulating index_put."""
    picked = tokens.index_select(0, b.gather).view(b.examples, b.length, tokens.size(1), tokens.size(2))
    return picked.transpose(1, 2).to(dtype)


def _upcast(query: torch.Tensor, length: int) -> bool:
    """Whether attention over ``length`` tokens would run in bf16 on a CPU (bf16 inputs, or
    bf16 autocast, which casts SDPA's inputs) where fp32 is faster (CPU_BF16_ATTENTION_FROM)."""
    if query.device.type != "cpu" or length >= CPU_BF16_ATTENTION_FROM:
        return False
    autocast_bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return query.dtype == torch.bfloat16 or autocast_bf16


def register() -> None:
    """Make ``sdpa_segments`` a transformers attention backend (idempotent). Its masks
    are SDPA's, for the calls that come without a plan."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, segment_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)


def unwrapped(model: Any) -> Any:
    """The transformers model itself, under a peft wrapper or not."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def attention_of(model: Any) -> str:
    """The attention backend the model runs ("sdpa_segments", "sdpa", "flash_attention_2", …)."""
    return str(getattr(getattr(unwrapped(model), "config", None), "_attn_implementation", "?"))


def use_segments(model: Any) -> bool:
    """Whether this model's attention takes a plan (set at load by engine/model/hero.py)."""
    return attention_of(model) == NAME


def switch_to_segments(model: Any) -> bool:
    """Use ``sdpa_segments`` in a model that runs on SDPA and dispatches attention through
    transformers' interface; False (model untouched) otherwise."""
    base = unwrapped(model)
    if attention_of(base) != "sdpa":
        return False
    if not getattr(base, "_supports_attention_backend", False):
        return False
    register()
    base.set_attn_implementation(NAME)
    return use_segments(model)


def switch_to_sdpa(model: Any) -> None:
    """Back to transformers' own SDPA (the benchmarks' masked pass and peers)."""
    if use_segments(model):
        unwrapped(model).set_attn_implementation("sdpa")
