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
    assert [(b.input_ids[0, 0].item() // 1000, w) for b, w in shares[0]] == [(0, 1.0), (2, 1.0)]
    assert [(b.input_ids[0, 0].item() // 1000, w) for b, w in shares[1]] == [(1, 1.0), (3, 1.0)]


def test_otherwise_each_rank_takes_its_rows_of_every_micro_batch() -> None:
    micro = [batch(4, 0)]  # one micro-batch, two ranks: two rows each
    first, second = (Team(rank, 2, torch.device("cpu")).share(micro)[0][0] for rank in range(2))
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
    assert [b.input_ids[:, 0].tolist() for b, _ in first] == [[0, 8], [1000], [2000]]
    assert [b.input_ids[:, 0].tolist() for b, _ in second] == [[4], [2004]]  # sits the 1-row one out
    assert first[0][0].real_tokens + second[0][0].real_tokens == micro[0].real_tokens
    assert rows_of(batch(1, 0), 1, 2) is None
    bare = replace(batch(3, 0), row_tokens=())  # no per-row counts: a proportional share
    assert [rows_of(bare, rank, 2).real_tokens for rank in range(2)] == [8, 4]  # type: ignore[union-attr]
    team = Team(0, 2, torch.device("cpu"))
    assert "unevenly" in team.describe_split(3, 1) and "unevenly" not in team.describe_split(4, 1)
    assert team.describe_split(2, 2) == "1 micro-batch(es) of 2 rows per rank"


def test_sharded_a_rank_without_rows_runs_rank_0s_at_weight_0() -> None:
    """Sharded (FSDP), every forward pass gathers weights from every rank, so no rank may
    sit a micro-batch out: it runs rank 0's rows, and they count for nothing."""
    micro = [batch(3, 0), batch(1, 1), batch(2, 2)]  # 3 micro-batches on 2 ranks: rows shared
    teams = [Team(rank, 2, torch.device("cpu")) for rank in range(2)]
    for team in teams:
        team.shard = True
    first, second = (team.share(micro) for team in teams)
    assert [(b.input_ids[:, 0].tolist(), w) for b, w in first] == [
        ([0, 8], 1.0),
        ([1000], 1.0),
        ([2000], 1.0),
    ]
    assert [(b.input_ids[:, 0].tolist(), w) for b, w in second] == [([4], 1.0), ([1000], 0.0), ([2004], 1.0)]
    assert len(first) == len(second)
    assert "sharded (FSDP)" in teams[0].describe_split(3, 1)
