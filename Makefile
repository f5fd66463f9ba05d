# Everything runs from .venv, which this Makefile builds from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench chaos clean compile

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Bytecode for the workflow sandbox, which re-imports workflow modules for every run:
# with PYTHONDONTWRITEBYTECODE set, nothing else would write it.
compile: $(STAMP)
	$(BIN)/python -m compileall -q payouts workflows activities worker.py starter.py

run: compile
	$(BIN)/payouts up --demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: compile
	$(BIN)/python -m bench $(BENCH_ARGS)

# 200 cash-outs through worker SIGKILLs, server restarts and every rail fault (a few minutes).
chaos: compile
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .payouts .mypy_cache .pytest_cache .ruff_cache
