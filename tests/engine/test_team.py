"""How a global batch is shared among ranks (engine/train/team.py), without processes."""

from __future__ import annotations

from dataclasses import replace

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


def test_rows_that_do_not_divide_are_shared_unevenly_and_none_is_lost() -> None:
    """3 rows on 2 ranks: 2 + 1 (the loss is normalised by the whole step, so the summed
    gradient is still the one-process one); 1 row on 2 ranks: the second rank sits out."""
    micro = [batch(3, 0), batch(1, 1), batch(2, 2)]  # 3 micro-batches, 2 ranks: rows shared
    first, second = (Team(rank, 2, torch.device("cpu")).share(micro) for rank in range(2))
    assert [b.input_ids[:, 0].tolist() for b in first] == [[0, 8], [1000], [2000]]
    assert [b.input_ids[:, 0].tolist() for b in second] == [[4], [2004]]
    assert first[0].real_tokens + second[0].real_tokens == micro[0].real_tokens
    assert rows_of(batch(1, 0), 1, 2) is None
    bare = replace(batch(3, 0), row_tokens=())  # no per-row counts: a proportional share
    assert [rows_of(bare, rank, 2).real_tokens for rank in range(2)] == [8, 4]  # type: ignore[union-attr]
    team = Team(0, 2, torch.device("cpu"))
    assert "unevenly" in team.describe_split(3, 1) and "unevenly" not in team.describe_split(4, 1)
    assert team.describe_split(2, 2) == "1 micro-batch(es) of 2 rows per rank"
