# Two entry points: `make serve` and `make test`. Both bootstrap .venv from this repository's files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

.PHONY: install serve test lint bench
install: $(STAMP)

serve: $(STAMP)
	$(BIN)/feedforward serve

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check engine service tests bench examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/engine.py
