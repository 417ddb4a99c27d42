# Two commands on a fresh machine: `make demo` and `make test`. Everything else they need
# is installed here from pinned versions (uv.lock for the app, tools/sam/requirements.txt for SAM).
SHELL := /bin/bash
.DEFAULT_GOAL := help

BOOT_PYTHON ?= $(firstword $(shell command -v python3 2>/dev/null))
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help env demo test unit lint bench clean

help:
	@echo "make demo   - run the broker end to end on the embedded local stack"
	@echo "make test   - install what the tests need and run the whole suite"
	@echo "make lint   - ruff (lint, format check) and mypy"
	@echo "make bench  - benchmarks (ratios against a baseline measured in the same run)"

$(UV):
	@test -n "$(BOOT_PYTHON)" || { echo "python3 is needed to bootstrap uv" >&2; exit 1; }
	$(BOOT_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	$(UV) sync --frozen --python "$(PYTHON312)"
	@touch $@

env: $(VENV)/.synced

test: env
	$(VENV)/bin/pytest -q

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: env
	$(VENV)/bin/python -m jit_local.demo

bench: env
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(TOOLS) $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
