# Everything runs from .venv, which this Makefile builds from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench chaos attack clean compile browser ui-test

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

pytest: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's Chromium for the browser test of the Temporal UI (Playwright drives it; nothing
# is downloaded by Playwright itself). Where it cannot be installed the test says so and skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the UI test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			>/dev/null 2>&1 || echo "could not install chromium: the UI test will be skipped"; }

# The browser test alone: approve a held cash-out from the Temporal UI with a signed payload.
ui-test: $(STAMP) browser
	$(BIN)/python -m pytest tests/ui -p no:cacheprovider $(PYTEST_ARGS)

bench: compile
	$(BIN)/python -m bench $(BENCH_ARGS)

# Every attack on a running stack, at full size: one table (0 money moved, 0 secrets).
attack: compile
	$(BIN)/python -m tests.attack $(ATTACK_ARGS)

# 200 cash-outs through worker SIGKILLs, server restarts and every rail fault (a few minutes).
chaos: compile
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .payouts .mypy_cache .pytest_cache .ruff_cache
