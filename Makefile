# crosswalk: the two commands a new user needs are `make run` and `make test`; `make` alone lists them all.
PYTHON ?= python3
# The virtualenv that make installs into (`make VENV=DIR` for another one).
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# the build's output directory (not build/, where `pip install .` puts setuptools' build/lib)
OUT    ?= out
# The extras that `make test` and `make check` install on top of the runtime, as pip's `.[dev]` names them
# (comma-separated).
TEST_EXTRAS := dev,spark

# What make has installed into $(VENV), done again when pyproject.toml changes: the runtime only, for
# run, build and release; and the development tools (pytest, ruff, mypy, playwright, ...) for test and
# check. A stamp names its extras, so that changing TEST_EXTRAS installs again.
comma   := ,
RUNTIME := $(VENV)/.installed-runtime
DEV     := $(VENV)/.installed-$(subst $(comma),+,$(TEST_EXTRAS))

.DEFAULT_GOAL := help
.PHONY: help run build release test check format bench browser strace java clean

## help: list the targets, and how to have the `crosswalk` command in your shell
help:
	@echo "make run      install the runtime, build the crosswalk of the embedded data into $(OUT)/, serve it on http://$(HOST):$(PORT)"
	@echo "              (PORT=8001 make run, or make run PORT=8001, to choose another port)"
	@echo "make build    install the runtime and build into $(OUT)/"
	@echo "make release  build, then publish $(OUT)/ as a dated release in releases/"
	@echo "make test     install the development tools and run the test suite"
	@echo "make check    format check, lint, type check and import contracts"
	@echo "make bench    the benchmarks"
	@echo "make clean    remove $(OUT)/, releases/ and the caches"
	@echo
	@echo "The crosswalk command is installed in $(VENV)/bin: run '. $(VENV)/bin/activate' to have it in your shell."

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	$(PY) -m compileall -q crosswalk matchers api
	touch $@

$(DEV): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $@

REVIEW_STORE ?= review/review.sqlite

## run: install, build the crosswalk of the embedded data, then serve it on http://$(HOST):$(PORT)
run: build
	$(VENV)/bin/crosswalk serve --db $(OUT)/crosswalk.sqlite --review-store $(REVIEW_STORE) --host $(HOST) --port $(PORT)

## build: install and build the crosswalk of the embedded data into $(OUT)/ (ids carried over from releases/,
## review decisions from $(REVIEW_STORE) binding)
build: $(RUNTIME)
	mkdir -p $(dir $(REVIEW_STORE))
	$(VENV)/bin/crosswalk build --config data/sources.toml --out $(OUT)/ --releases releases/ --review-store $(REVIEW_STORE)
	@echo "The crosswalk command is in $(VENV)/bin: run '. $(VENV)/bin/activate' to have it in your shell."

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

## java: Debian's Java 17 runtime, which the Spark runner's tests need (needs root or sudo)
java:
	$(call apt_install,java,openjdk-17-jre-headless)

## test: install the development tools (TEST_EXTRAS) and run the test suite
test: $(DEV) browser strace java
	$(PY) -m pytest -q

## check: format check, lint, type check and the import contracts in .importlinter
check: $(DEV)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(DEV)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet splink duckdb recordlinkage pandas openpyxl
	touch $@

## bench: run the benchmarks; the peers (Splink, recordlinkage) live in their own virtualenv, .venv-bench
bench: $(DEV) $(BENCH_VENV)/.installed
	$(PY) bench/accuracy.py
	$(PY) bench/stability.py
	$(PY) bench/api.py
	$(PY) bench/scale.py

clean:
	rm -rf $(OUT) releases .pytest_cache .mypy_cache .ruff_cache
