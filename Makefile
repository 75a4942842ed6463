# The two commands: `make run` (local, embedded defaults) and `make test` (the whole suite + quality gates).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit setup migrate clean postgres-bin

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/broker migrate
	$(BIN)/broker serve

migrate: setup
	$(BIN)/broker migrate

postgres-bin:
	@bash tests/bin/ensure-postgres

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

test: setup postgres-bin lint typecheck
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .broker .pytest_cache .mypy_cache .ruff_cache
