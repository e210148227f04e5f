# crosswalk: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
# the build's output directory (not build/, where `pip install .` puts setuptools' build/lib)
OUT    ?= out

.PHONY: run build release test check format bench browser strace clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q crosswalk matchers api
	touch $(STAMP)

REVIEW_STORE ?= review/review.sqlite

## run: install, build the crosswalk of the embedded data, then serve it on http://$(HOST):$(PORT)
run: build
	$(VENV)/bin/crosswalk serve --db $(OUT)/crosswalk.sqlite --review-store $(REVIEW_STORE) --host $(HOST) --port $(PORT)

## build: install and build the crosswalk of the embedded data into $(OUT)/ (ids carried over from releases/,
## review decisions from $(REVIEW_STORE) binding)
build: $(STAMP)
	mkdir -p $(dir $(REVIEW_STORE))
	$(VENV)/bin/crosswalk build --config data/sources.toml --out $(OUT)/ --releases releases/ --review-store $(REVIEW_STORE)

## release: publish $(OUT)/ as a dated, immutable release in releases/
release: build
	$(VENV)/bin/crosswalk release --build $(OUT)/ --releases releases/

# apt-get as root, or through sudo; $(call apt_install,COMMAND,PACKAGE) installs PACKAGE when COMMAND is missing
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo )apt-get
apt_install = @command -v $(1) >/dev/null 2>&1 || { $(APT_GET) update -qq && $(APT_GET) install -y -qq $(2) >/dev/null; }

## browser: Debian's Chromium for the review pages' browser tests (needs root or sudo)
browser:
	$(call apt_install,chromium,chromium)

## strace: Debian's strace, which kills builds at each step of publishing in the engine's tests (needs root or sudo)
strace:
	$(call apt_install,strace,strace)

## test: install everything and run the test suite
test: $(STAMP) browser strace
	$(PY) -m pytest -q

## check: format check, lint, type check and the import contracts in .importlinter
check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet splink duckdb recordlinkage pandas openpyxl
	touch $@

## bench: run the benchmarks; the peers (Splink, recordlinkage) live in their own virtualenv, .venv-bench
bench: $(STAMP) $(BENCH_VENV)/.installed
	$(PY) bench/accuracy.py
	$(PY) bench/stability.py
	$(PY) bench/api.py
	$(PY) bench/scale.py

clean:
	rm -rf $(OUT) releases .pytest_cache .mypy_cache .ruff_cache
