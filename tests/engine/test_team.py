"""How a global batch is shared among ranks (engine/train/team.py), without processes."""

from __future__ import annotations

import pytest
import torch

from engine.train.packing import PackedBatch
from engine.train.team import Team, rows_of


def batch(rows: int, tag: int) -> PackedBatch:
    ids = torch.arange(rows * 4).view(rows, 4) + 1000 * tag
    return PackedBatch(ids, ids % 4, ids, examples=rows, real_tokens=rows * 4, row_tokens=(4,) * rows)


def test_whole_micro_batches_go_round_the_ranks() -> None:
    micro = [batch(2, tag) for tag in range(4)]
    shares = [Team(rank, 2, torch.device("cpu")).share(micro) for rank in range(2)]
    assert [b.input_ids[0, 0].item() // 1000 for b in shares[0]] == [0, 2]
    assert [b.input_ids[0, 0].item() // 1000 for b in shares[1]] == [1, 3]


def test_otherwise_each_rank_takes_its_rows_of_every_micro_batch() -> None:
    micro = [batch(4, 0)]  # one micro-batch, two ranks: two rows each
    first, second = (Team(rank, 2, torch.device("cpu")).share(micro)[0] for rank in range(2))
    assert first.input_ids[:, 0].tolist() == [0, 8] and second.input_ids[:, 0].tolist() == [4, 12]
    assert first.input_ids.is_contiguous() and first.targets.view(-1).numel() == 8  # view() works
    assert first.real_tokens + second.real_tokens == micro[0].real_tokens
    together = torch.cat([first.input_ids, second.input_ids]).sort(dim=0).values
    assert torch.equal(together, micro[0].input_ids)  # every row trained once, by one rank


def test_rows_that_do_not_divide_are_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match="multiple of 2"):
        rows_of(batch(3, 0), 0, 2)
