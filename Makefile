# Two commands on a fresh machine:  `make play`  and  `make test`.
# TORCH picks the torch build: the default is the CPU wheel these machines carry;
# on a GPU box use e.g. `make play TORCH=torch` (any build that matches your CUDA).
PY ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: play test setup lint bench clean

$(BIN)/realm: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/realm

setup: $(BIN)/realm

play: setup
	$(BIN)/realm play

# Tests in parallel, a worker per core up to 4 (most wait on Textual pilots and engine
# processes, so two workers on two cores halve the run: 12 → 6 minutes here). The ten
# slowest are listed at the end: CI must stay under 15 minutes.
test: setup
	$(BIN)/pytest -q -n auto --maxprocesses 4 --durations=10

lint: setup
	$(BIN)/ruff check engine tui skills tests
	$(BIN)/ruff format --check engine tui skills tests
	$(BIN)/mypy engine skills tui

bench: setup
	$(BIN)/realm bench
