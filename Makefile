# Qrels Studio. `make run` starts the app with the demo loaded; `make test` runs the whole suite.
# Both set everything up first (virtualenv, requirements, migrations), so a fresh clone needs nothing else.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.DEFAULT_GOAL := help
.PHONY: help setup run test lint format chromium nginx migrate bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt
	$(PY) -m pip check
	touch $@

setup: $(VENV)/.installed ## Create .venv and install requirements.txt

migrate: setup ## Upgrade the database schema (QRELS_DB_URL, default data/qrels.db)
	$(PY) cli.py db upgrade

run: setup ## Migrate, load the demo into an empty database, start the app on http://localhost:$(PORT)
	$(PY) cli.py setup
	$(PY) cli.py serve --server.port $(PORT)

chromium: ## Install Debian's Chromium for the browser tests when it is missing and installable
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "chromium missing and not installable here: the browser tests will be skipped"; fi

nginx: ## Install Debian's nginx for the multi-process test (tests/test_browser_proxy.py) when missing
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's nginx for the multi-process test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null) \
			|| echo "nginx could not be installed: the multi-process test will be skipped"; \
	else echo "nginx missing and not installable here: the multi-process test will be skipped"; fi

lint: $(VENV)/.dev-installed ## ruff: lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed ## ruff: fix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(VENV)/.dev-installed chromium nginx lint ## Set up, then run the whole suite (lint, unit, pages, browser)
	$(PY) -m pytest

bench: $(VENV)/.dev-installed ## Run the benchmarks in bench/ and append figures to bench/RESULTS.md
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean: ## Remove the virtualenv, caches and local data (the database too)
	rm -rf $(VENV) .pytest_cache .ruff_cache data
