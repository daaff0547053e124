"""Packing: several short examples per row, none attending across its boundary.

Each example's ``position_ids`` restart at 0. With no attention mask, transformers
derives a block-diagonal causal mask from those resets (``find_packed_sequence_indices``),
so packing costs nothing in correctness; ``tests/engine/test_packing.py`` proves it on the
installed stack rather than assuming it. Targets are shifted here: ``targets[t]`` is
the token at ``t+1`` when that token is an assistant token, else ``IGNORE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from engine.train.chat import Rendered

IGNORE = -100


class ExampleTooLong(ValueError):
    """An example longer than a packed row (it would have to be cut)."""


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # [rows, seq_len]
    position_ids: torch.Tensor
    targets: torch.Tensor
    examples: int
    real_tokens: int  # tokens that are not padding
    row_tokens: tuple[int, ...] = ()  # real tokens per row (for splitting a batch)

    @property
    def target_tokens(self) -> int:
        return int((self.targets != IGNORE).sum())

    @property
    def masked_fraction(self) -> float:
        """Share of the row's tokens that carry no loss (prompts, template, padding)."""
        return 1.0 - self.target_tokens / self.targets.numel()

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            self.input_ids.to(device),
            self.position_ids.to(device),
            self.targets.to(device),
            self.examples,
            self.real_tokens,
            self.row_tokens,
        )

    def split(self) -> tuple[PackedBatch, PackedBatch]:
        """Two halves by rows (the out-of-memory fallback: same data, smaller passes)."""
        half = self.input_ids.size(0) // 2
        if half == 0:
            raise ValueError("a one-row batch cannot be split")
        rows = self.row_tokens or (self.real_tokens // self.input_ids.size(0),) * self.input_ids.size(0)
        parts = []
        for sl in (slice(0, half), slice(half, None)):
            real = sum(rows[sl])
            share = real / max(1, self.real_tokens)
            parts.append(
                PackedBatch(
                    self.input_ids[sl],
                    self.position_ids[sl],
                    self.targets[sl],
                    round(self.examples * share),
                    real,
                    # unknown stays unknown: the attention plan reads these as where padding starts
                    tuple(rows[sl]) if self.row_tokens else (),
                )
            )
        return parts[0], parts[1]


class ExampleSource(Protocol):
    def peek(self) -> Rendered | None: ...  # None: nothing left

    def next(self) -> Rendered: ...


class ListSource:
    """A finite source (validation sets)."""

    def __init__(self, examples: list[Rendered]) -> None:
        self.examples = examples
        self.cursor = 0

    def peek(self) -> Rendered | None:
        return self.examples[self.cursor] if self.cursor < len(self.examples) else None

    def next(self) -> Rendered:
        self.cursor += 1
        return self.examples[self.cursor - 1]


def pack_rows(source: ExampleSource, rows: int | None, seq_len: int, pad_id: int) -> PackedBatch:
    """Fill rows greedily from a source: ``rows`` of them, or as many as a finite source
    needs when ``rows`` is None. An example that does not fit stays in the source for
    the next row; one longer than a row is an error: a cut answer teaches the wrong
    thing, so sources hold examples that fit (``train/fit.py`` sizes the rows)."""
    row_ids: list[list[int]] = []
    row_pos: list[list[int]] = []
    row_tgt: list[list[int]] = []
    examples = real = 0
    per_row: list[int] = []
    while (len(row_ids) < rows) if rows is not None else (source.peek() is not None):
        ids: list[int] = []
        pos: list[int] = []
        tgt: list[int] = []
        while len(ids) < seq_len:
            upcoming = source.peek()
            if upcoming is None or (ids and len(upcoming) > seq_len - len(ids)):
                break
            if len(upcoming) > seq_len:
                raise ExampleTooLong(f"an example of {len(upcoming)} tokens does not fit a row of {seq_len}")
            example = source.next()
            n = len(example)
            ids.extend(example.input_ids[:n])
            pos.extend(range(n))
            # targets[t] = token t+1 when that token is trainable; the example's last
            # token predicts nothing (the next example is unrelated).
            nxt = example.input_ids[1:n]
            ok = example.trainable[1:n]
            tgt.extend(t if keep else IGNORE for t, keep in zip(nxt, ok, strict=True))
            tgt.append(IGNORE)
            examples += 1
            real += n
        pad = seq_len - len(ids)
        # Padding is its own segment (positions restart) so it never joins an example.
        per_row.append(len(ids))
        row_ids.append(ids + [pad_id] * pad)
        row_pos.append(pos + list(range(pad)))
        row_tgt.append(tgt + [IGNORE] * pad)
    return PackedBatch(
        torch.tensor(row_ids, dtype=torch.long).view(-1, seq_len),
        torch.tensor(row_pos, dtype=torch.long).view(-1, seq_len),
        torch.tensor(row_tgt, dtype=torch.long).view(-1, seq_len),
        examples,
        real,
        tuple(per_row),
    )
