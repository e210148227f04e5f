# crosswalk: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run build serve test check lint typecheck format bench browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, build the crosswalk of the embedded data, then serve it on http://$(HOST):$(PORT)
run: build
	$(VENV)/bin/crosswalk serve --db build/crosswalk.sqlite --host $(HOST) --port $(PORT)

## build: install and build the crosswalk of the embedded data into build/
build: $(STAMP)
	$(VENV)/bin/crosswalk build --config data/sources.toml --out build/

## browser: Debian's Chromium for the review pages' browser tests (needs root or sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

## test: install everything and run the test suite
test: $(STAMP) browser
	$(PY) -m pytest -q

## check: format check, lint and type check
check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: run the benchmarks (installs the peers, Splink and recordlinkage, as bench-only extras)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/accuracy.py
	$(PY) bench/stability.py
	$(PY) bench/api.py
	$(PY) bench/scale.py

clean:
	rm -rf build releases .pytest_cache .mypy_cache .ruff_cache
