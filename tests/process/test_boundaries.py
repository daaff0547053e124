"""The layer rules, over every file.

- In fresh interpreters: importing every module of the game never loads torch & co
  (its first frame must not wait for them); importing every module of the engine and
  the skills never loads textual/rich.
- Read from the source: the game imports only ``engine.protocol`` from the engine
  (and ``skills`` for the skill commands); ``engine.protocol`` imports nothing else from
  ``engine``, and never torch.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

HEAVY = {"torch", "transformers", "peft", "bitsandbytes"}
UI = {"textual", "rich"}


def modules(package: str) -> list[str]:
    """Every importable module of a package (not its ``__main__``, which runs)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def loaded_after_import(names: list[str]) -> set[str]:
    code = (
        "import importlib, sys, json\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_game_never_loads_heavy_libraries() -> None:
    loaded = loaded_after_import(modules("tui"))
    assert not loaded & HEAVY, f"tui pulled in {loaded & HEAVY}"


def test_the_engine_and_skills_never_load_ui() -> None:
    loaded = loaded_after_import(modules("engine") + modules("skills"))
    assert not loaded & UI, f"engine/skills pulled in {loaded & UI}"


def test_the_game_imports_only_the_protocol_from_the_engine() -> None:
    bad = []
    for path in sorted((ROOT / "tui").rglob("*.py")):
        for line, name in imports_of(path):
            if name.split(".")[0] in HEAVY or (
                name.startswith("engine") and not name.startswith("engine.protocol")
            ):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_protocol_imports_nothing_else_from_the_engine() -> None:
    bad = []
    for path in sorted((ROOT / "engine" / "protocol").rglob("*.py")):
        for line, name in imports_of(path):
            outside = name.startswith("engine") and not name.startswith("engine.protocol")
            if outside or name.split(".")[0] in HEAVY | UI:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Each checker sees a violation: a loaded UI module, a forbidden import line."""
    assert "textual" in loaded_after_import(["textual.app"])
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from engine.run import worker\nimport torch\n")
    assert [name for _, name in imports_of(sneaky)] == ["engine.run", "engine.run.worker", "torch"]


def test_offline_quest_and_vault_commands_never_load_torch() -> None:
    """`realm quest` and `realm vault` with the engine down answer in a fraction of a
    second because their engine-side modules stay torch-free."""
    loaded = loaded_after_import(["engine.quests.commands", "engine.store.commands"])
    assert not loaded & HEAVY, f"pulled in {loaded & HEAVY}"
