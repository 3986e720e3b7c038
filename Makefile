# osr-reconciler — everything a fresh machine needs, in two commands: `make demo`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Demo secrets: the passwords the demo store was seeded with (examples/demo-store.yaml).
DEMO_ENV := OSR_ACME_NO_OSLO=demo-oslo-pw OSR_ACME_NO_BERGEN=demo-bergen-pw \
            OSR_ACME_SE_STOCKHOLM=demo-stockholm-pw

.PHONY: demo test test-subprocess lint schemas bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@mkdir -p -m 700 .secrets/nordlys && umask 077 && printf 'demo-tromso-pw\n' > .secrets/nordlys/tromso.txt
	$(BIN)/reconciler store init
	$(BIN)/reconciler store seed examples/demo-store.yaml
	$(BIN)/reconciler validate
	$(DEMO_ENV) $(BIN)/reconciler plan

# CLI tests run reconciler in-process (tests/conftest.py Cli); the process-boundary tests
# (signals, kill -9, locks, packaging, console-script exit codes) run it as a subprocess.
test: $(STAMP)
	$(BIN)/python -m pytest -q

# The same suite with every CLI call as its own process (slow; checks the in-process runner).
test-subprocess: $(STAMP)
	RECONCILER_TEST_SUBPROCESS=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks
	$(BIN)/ruff format --check reconciler tests benchmarks
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/python -m reconciler.schemas

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench

clean:
	rm -rf $(VENV) .reconciler .pytest_cache .mypy_cache .ruff_cache
