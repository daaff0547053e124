"""LoRA on the hatchling (CPU): only adapters train, adapter loot resumes exactly, a
merged export is a plain transformers model that generates what the adapters did, and
QLoRA is refused on a machine without CUDA."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.model.export import export
from engine.model.export import main as export_main
from engine.model.hero import HeroLoadError, load_hero
from engine.protocol.config import HeroConfig, LoraConfig
from engine.protocol.savedir import SaveDir
from tests.conftest import ROOT, losses, make_hero, realm_here, run_worker


def lora_hero(root: Path, hatchling: Path) -> tuple[SaveDir, HeroConfig]:
    save, config = make_hero(root, hatchling)
    config = replace(config, mode="lora", lora=LoraConfig(rank=4, alpha=8, dropout=0.0))
    save.config.write_text(config.to_json())
    return save, config


def test_lora_trains_adapters_only(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = lora_hero(tmp_path, hatchling_dir)
    worker = run_worker(save, config, 6)
    model = worker.hero.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base = load_hero(hatchling_dir, torch.device("cpu"), "base").model.state_dict()
    changed_adapters = 0
    for name, param in model.named_parameters():
        if "lora_B" in name:
            changed_adapters += int(param.detach().abs().sum() > 0)  # B starts at zero
        elif "lora_" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(param.detach(), base[key]), name  # the base never moves
    assert changed_adapters == sum("lora_B" in n for n in trainable)


def test_adapter_loot_is_small_and_resumes_exactly(tmp_path: Path, hatchling_dir: Path) -> None:
    save_a, config_a = lora_hero(tmp_path / "a", hatchling_dir)
    run_worker(save_a, config_a, 16)
    save_b, config_b = lora_hero(tmp_path / "b", hatchling_dir)
    run_worker(save_b, config_b, 9)
    loot = save_b.checkpoints / "step-000009"
    assert (loot / "adapter_model.safetensors").exists() and not (loot / "model.safetensors").exists()
    base_bytes = (hatchling_dir / "model.safetensors").stat().st_size
    assert (loot / "adapter_model.safetensors").stat().st_size < base_bytes / 5
    run_worker(save_b, config_b, 16)
    a, b = losses(save_a.metrics), losses(save_b.metrics)
    assert [b[s] for s in range(10, 17)] == [a[s] for s in range(10, 17)]


def test_merged_export_generates_the_same_tokens(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = lora_hero(tmp_path, hatchling_dir)
    worker = run_worker(save, config, 8)
    adapter_model = worker.hero.model.eval()
    dest = tmp_path / "exported"
    how = export(save, save.checkpoints / "step-000008", dest)
    assert "merged" in how
    assert not (dest / "adapter_config.json").exists()
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(dest).eval()
    prompt = torch.tensor([worker.renderer.prompt_ids([{"role": "user", "content": "Compute: add(①, ①)"}])])
    with torch.no_grad():
        ours = adapter_model.generate(input_ids=prompt, max_new_tokens=12, do_sample=False)
        theirs = plain.generate(input_ids=prompt, max_new_tokens=12, do_sample=False)
    assert ours.tolist() == theirs.tolist()


def test_full_mode_export_copies_weights_not_optimizer(tmp_path: Path, hatchling_dir: Path) -> None:
    save, config = make_hero(tmp_path, hatchling_dir)
    run_worker(save, config, 3)
    argv = ["--save-dir", str(save.root), str(tmp_path / "out")]
    assert export_main(argv) == 0
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert "model.safetensors" in files and "trainer.pt" not in files and "meta.json" not in files
    with pytest.raises(SystemExit, match="already exists"):
        export_main(argv)


def test_qlora_is_refused_without_cuda(tmp_path: Path, hatchling_dir: Path) -> None:
    with pytest.raises(HeroLoadError, match=r"needs a CUDA GPU.*--mode lora"):
        load_hero(hatchling_dir, torch.device("cpu"), "q", mode="qlora")
    refused = realm_here("train", "--saves", str(tmp_path), "--hero", "q", "--mode", "qlora")
    assert (
        refused.returncode != 0 and "needs a CUDA GPU" in refused.stderr and "--mode lora" in refused.stderr
    )
    # the engine itself refuses too (with the same reason in its log), and exits
    save, _ = make_hero(tmp_path / "e", hatchling_dir)
    save.config.unlink()
    engine = subprocess.run(
        [sys.executable, "-m", "engine", "--save-dir", str(save.root), "--mode", "qlora"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert engine.returncode != 0
    assert "needs a CUDA GPU" in save.log.read_text()
    status = json.loads(save.status.read_text())  # what `realm status` and the game show
    assert status["state"] == "crashed" and "needs a CUDA GPU" in status["error"]


def test_a_hero_keeps_its_mode(tmp_path: Path, hatchling_dir: Path) -> None:
    save, _ = lora_hero(tmp_path, hatchling_dir)
    assert json.loads(save.config.read_text())["mode"] == "lora"
    refused = realm_here("train", "--saves", str(tmp_path), "--mode", "full")
    assert refused.returncode != 0 and "trains in mode lora" in refused.stderr
