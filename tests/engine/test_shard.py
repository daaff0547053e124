"""The sharded optimizer state's two forms (engine/train/shard.py), without processes:
loot keeps torch's numbered form, torch.distributed.checkpoint speaks in names."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.train.shard import named, numbered


def test_an_optimizer_state_goes_from_numbers_to_names_and_back() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    names = ["0.weight", "1.weight", "0.bias", "1.bias"]  # the order the groups list them
    params = dict(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [params[n] for n in names[:2]], "weight_decay": 0.1},
            {"params": [params[n] for n in names[2:]], "weight_decay": 0.0},
        ]
    )
    model(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    by_name = named(state, names)
    assert by_name["param_groups"][1]["params"] == ["0.bias", "1.bias"]
    assert torch.equal(by_name["state"]["1.weight"]["exp_avg"], state["state"][1]["exp_avg"])
    back = numbered(by_name, names)
    assert back["param_groups"] == state["param_groups"]
    assert sorted(back["state"]) == sorted(state["state"])
    fresh = torch.optim.AdamW(
        [
            {"params": [params[n] for n in names[:2]], "weight_decay": 0.1},
            {"params": [params[n] for n in names[2:]], "weight_decay": 0.0},
        ]
    )
    fresh.load_state_dict(back)  # loot's form loads as torch's own
    assert torch.equal(fresh.state_dict()["state"][3]["exp_avg_sq"], state["state"][3]["exp_avg_sq"])


def test_rank_0s_copy_to_shard_is_its_own_with_its_tie_kept(hatchling_dir: Path) -> None:
    """The copy rank 0 shards (keeping its whole model for evals and loot) shares no
    storage with the original, and the hatchling's tied embedding / output weight stays one
    tensor (that it is made in host memory, not on the GPU, is tests/engine/test_gpu.py's)."""
    from engine.model.hero import load_hero
    from engine.train.shard import host_copy

    model = load_hero(hatchling_dir, torch.device("cpu"), "hatchling").model
    twin = host_copy(model)
    assert twin.get_output_embeddings().weight is twin.get_input_embeddings().weight
    pairs = list(zip(model.state_dict().values(), twin.state_dict().values(), strict=True))
    assert all(torch.equal(a, b) and b.device.type == "cpu" for a, b in pairs)
    assert not {a.data_ptr() for a, _ in pairs} & {b.data_ptr() for _, b in pairs}
    with torch.no_grad():
        twin.get_input_embeddings().weight.add_(1.0)
    assert not torch.equal(model.get_input_embeddings().weight, twin.get_input_embeddings().weight)
