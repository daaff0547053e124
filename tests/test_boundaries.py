"""The layer rule, checked in fresh interpreters: the game never loads torch & co
(its first frame must not wait for them); the engine and skills never load textual/rich."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ["torch", "transformers", "peft", "bitsandbytes"]
UI = ["textual", "rich"]


def loaded_after_import(modules: list[str]) -> set[str]:
    code = (
        "import sys, json\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module",
    ["tui.app", "tui.cli", "tui.launcher", "tui.link", "tui.state", "tui.screens.tavern"],
)
def test_tui_never_loads_heavy_libraries(module: str) -> None:
    loaded = loaded_after_import([module])
    assert not loaded & set(HEAVY), f"{module} pulled in {loaded & set(HEAVY)}"


@pytest.mark.parametrize(
    "module",
    ["engine.main", "engine.worker", "engine.server", "engine.protocol", "skills.registry"],
)
def test_engine_and_skills_never_load_ui(module: str) -> None:
    loaded = loaded_after_import([module])
    assert not loaded & set(UI), f"{module} pulled in {loaded & set(UI)}"


def test_check_detects_a_violation() -> None:
    """The checker itself can fail: importing textual shows up."""
    assert "textual" in loaded_after_import(["textual.app"])
