# Teddy Hub — every target does its own set-up from a fresh clone.
#   make run    run broker, hub and API on the embedded defaults (no service or key needed)
#   make test   run the test suite (unit, integration against local services, end to end)
#   make lint   ruff (lint + format check) and mypy --strict
#   make bench  benchmarks (never part of make test)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint format bench vectors system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet --editable '.[offline,test]'
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

run: $(STAMP)
	$(VENV)/bin/teddyhub up

test: $(STAMP) system-deps
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP) system-deps
	$(PY) -m bench

vectors: $(STAMP)
	$(PY) scripts/generate_vectors.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
