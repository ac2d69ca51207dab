# Warmline developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Tests use both CPU cores; set JOBS=0 to run in one process.
JOBS   ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run serve migrate demo check test test-all bench fmt clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/warmline: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Warmline needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/warmline

install: $(BIN)/warmline ## create .venv and install Warmline with its dev tools

run: install ## set up and run Warmline on the embedded default (SQLite, in-process bus) with demo data
	$(BIN)/warmline migrate
	$(BIN)/warmline demo
	$(BIN)/warmline serve --host $(HOST) --port $(PORT)

serve: install ## run the server (schema must be migrated)
	$(BIN)/warmline serve --host $(HOST) --port $(PORT)

migrate: install ## apply database migrations
	$(BIN)/warmline migrate

demo: install ## load demo skills and agents
	$(BIN)/warmline demo

fmt: install ## format the code
	$(BIN)/ruff format app tests tools bench migrations/env.py
	$(BIN)/ruff check --fix app tests tools bench migrations/env.py

check: install ## formatting, lint, types, import layers, pure cores
	$(BIN)/ruff format --check app tests tools bench migrations/env.py
	$(BIN)/ruff check app tests tools bench migrations/env.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/lint_cores.py

test: check ## set up and run the whole test suite (needs PostgreSQL and Redis, see README)
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest $(if $(filter 0,$(JOBS)),,-n $(JOBS))

test-all: test ## the whole suite (same as test)

bench: install ## the benchmarks (not tests; need PostgreSQL and Redis): docs/performance.md
	$(BIN)/python bench/routing_core.py
	$(BIN)/python bench/e2e_offer.py
	$(BIN)/python bench/e2e_message.py
	$(BIN)/python bench/reports.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
