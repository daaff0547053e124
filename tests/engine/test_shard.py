"""The sharded optimizer state's two forms (engine/train/shard.py), without processes:
loot keeps torch's numbered form, torch.distributed.checkpoint speaks in names."""

from __future__ import annotations

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
