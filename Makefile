# conforto: every target bootstraps the virtual environment it needs from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck unit bench serve clean lock

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==0.13.9
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the locked dependencies and the package

lock:  ## Re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 --quiet

run: $(STAMP)  ## Run the training pipeline end to end: validate, train, gate, promote
	$(BIN)/conforto pipeline run --config configs/pipeline.yaml

serve: $(STAMP)  ## Serve the production model on http://127.0.0.1:8000
	$(BIN)/conforto serve

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)  ## mypy strict on src/
	$(BIN)/mypy

test: lint typecheck  ## Lint, type-check and run the whole test suite with coverage
	$(BIN)/pytest --cov --cov-report=term --doctest-modules src tests

unit: $(STAMP)  ## The fast suite: unit tests and doctests, no real data or servers (< 1 min)
	$(BIN)/pytest -q --doctest-modules src tests/unit

bench: $(STAMP)  ## Run the benchmarks in bench/
	$(BIN)/python bench/data_stage.py

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
