# Canopy — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_WORKERS ?= 2
export CANOPY_TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test

.DEFAULT_GOAL := help
.PHONY: help install browser bubblewrap run test test-sqlite test-postgres test-e2e bench translations clean

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./sdk -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the host, the SDK (by path) and test tools

# Playwright drives Debian's chromium: `playwright install` cannot download browsers here.
# Chinese fonts, so pages and screenshots show Chinese text rather than empty boxes.
browser: ## Install Debian's chromium (and Chinese fonts) for the browser tests when missing
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; } || { \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

# Partner plugins run only inside bubblewrap (docs/sandbox.md); without it they are refused
# and the sandbox tests fail under CI=true.
bubblewrap: ## Install Debian's bubblewrap (the partner-plugin sandbox) when missing
	@command -v bwrap >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; }

run: export CANOPY_DEVELOPMENT = true
run: install bubblewrap ## Set up the embedded SQLite instance, seed the demo and serve on $(HOST):$(PORT)
	$(VENV)/bin/canopy init-instance
	$(VENV)/bin/canopy db upgrade
	$(VENV)/bin/canopy demo
	@echo ""
	@echo "  Canopy is starting on http://$(HOST):$(PORT)/"
	@echo "    storefronts:   http://$(HOST):$(PORT)/s/HQ  /s/SH001  /s/BJ001  /s/GZ001"
	@echo "    mini-program:  http://$(HOST):$(PORT)/mp/sh.deals/?branch=SH001"
	@echo "    API:           http://$(HOST):$(PORT)/api/v1/plugins   docs: /api/v1/docs"
	@echo "    health:        http://$(HOST):$(PORT)/healthz  /readyz"
	@echo "    sign in:       http://$(HOST):$(PORT)/signin   staff: /staff/signin   partners: /developer/signin"
	@echo ""
	@echo "  Demo sign-ins (development only):"
	@$(VENV)/bin/canopy demo-sign-ins
	@echo ""
	$(VENV)/bin/canopy serve --host $(HOST) --port $(PORT)

translations: install ## Add new texts to every package's catalog (translations/<locale>/…/messages.po) and compile them
	$(PY) -m host.catalogs update
	$(PY) -m host.catalogs check

test: install browser bubblewrap ## Run the whole suite on SQLite (browser tests included), then the database tests again on PostgreSQL
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: install ## The whole suite on the embedded SQLite
	CANOPY_TEST_BACKEND=sqlite $(PY) -m pytest -n $(PYTEST_WORKERS) -m "not postgres"

test-postgres: install ## The database tests on PostgreSQL (CANOPY_TEST_DATABASE_URL)
	CANOPY_TEST_BACKEND=postgresql $(PY) -m pytest -n $(PYTEST_WORKERS) -m "db or postgres"

test-e2e: install browser ## The browser tests alone: Chromium against a live server
	$(PY) -m pytest -m e2e tests/e2e

bench: install ## Benchmarks, printed as ratios against baselines measured in the same run
	$(PY) -m benchmarks

clean: ## Remove the virtualenv and the local instance
	rm -rf $(VENV) instance
