# Every target sets up what it needs on a fresh machine: nothing is installed by hand.
# `make` alone lists the targets (the `## target: text` comments below).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help dashboard dev checkout-example chalice-local seed aws-check test lint format clean package deploy destroy localstack-up deploy-localstack localstack-down dashboard-bench bench recon-bench chaos load

STAGE ?= dev
LOCALSTACK_URL ?= http://localhost:4566
COMPOSE ?= docker compose -f localstack/docker-compose.yml

## help: list the targets (the default)
help:
	@echo "PayFlow: make TARGET (the first target installs into $(VENV): about 2 minutes once)"
	@echo
	@sed -n 's/^## \([a-z-]*\): \(.*\)/  \1|\2/p' $(MAKEFILE_LIST) | awk -F'|' '{printf "%-20s %s\n", $$1, $$2}'

# No --quiet: the first install downloads and builds for a minute or two; pip's progress shows
# it is working.
$(STAMP): pyproject.toml requirements.lock requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "PayFlow needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@echo "Installing PayFlow and its tools into $(VENV) (the first time takes about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on --require-hashes -r requirements.lock
	$(BIN)/pip install --progress-bar on --no-deps --no-build-isolation -e .
	$(BIN)/pip download --quiet --dest $(VENV)/wheelhouse -r requirements.txt  # offline packaging
	@touch $(STAMP)
	@echo "Installed into $(VENV)"

# Debian packages the set-up installs when the machine lacks them (with sudo when not root):
# Node.js and npm build the front ends (payflow.js, the dashboard).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NPM := $(shell command -v npm || echo /usr/bin/npm)
$(NPM):
	@echo "Installing Node.js and npm for the front-end builds (apt-get, once per machine)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm

# -- payflow.js (clients/js): the browser SDK and PayFlow's checkout frames, built by esbuild into
# chalicelib/static/js/v1, which the app serves at /js/v1/ and `chalice package` ships. npm
# installs the locked build tools once (Node.js from apt-get when the machine has none).
CHECKOUT_JS := chalicelib/static/js/v1/payflow.js
CHECKOUT_TOOLS := clients/js/node_modules/.package-lock.json
$(CHECKOUT_TOOLS): clients/js/package.json clients/js/package-lock.json | $(NPM)
	cd clients/js && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@
$(CHECKOUT_JS): $(CHECKOUT_TOOLS) clients/js/build.mjs clients/js/tsconfig.json $(wildcard clients/js/src/*.ts clients/js/pages/*)
	cd clients/js && $(NPM) run --silent build

# -- Dashboard front end ------------------------------------------------------------------------
# dashboard/ (TypeScript, Vite, uPlot) builds into chalicelib/static/dashboard/, inside the Lambda
# package and outside git, which chalicelib/api/dashboard.py serves at /dashboard. `npm ci`
# installs exactly the lock; nothing is fetched when the page runs.
DASHBOARD_BUILD := chalicelib/static/dashboard/app.js
DASHBOARD_SOURCES := $(shell find dashboard/src dashboard/public -type f 2>/dev/null) \
	dashboard/vite.config.ts dashboard/tsconfig.json
dashboard/node_modules/.package-lock.json: dashboard/package.json dashboard/package-lock.json | $(NPM)
	cd dashboard && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@
$(DASHBOARD_BUILD): dashboard/node_modules/.package-lock.json $(DASHBOARD_SOURCES)
	cd dashboard && $(NPM) run build

## dashboard: build the dashboard's assets (make dev, test and package build them first)
dashboard: $(DASHBOARD_BUILD)

## dev: install, then run the embedded sandbox in the foreground (Ctrl-C stops it)
dev: $(STAMP) $(CHECKOUT_JS) $(DASHBOARD_BUILD)
	$(BIN)/python -m payflow.sandbox

## checkout-example: the example shop (examples/checkout) on SHOP_PORT (4242), beside `make dev`
checkout-example: $(STAMP) $(CHECKOUT_JS)
	SHOP_PORT=$(or $(SHOP_PORT),4242) $(BIN)/python examples/checkout/server.py

## chalice-local: `chalice local` on PORT (8001) against the running `make dev` sandbox
chalice-local: $(STAMP)
	$(BIN)/payflow chalice-local --port $(or $(PORT),8001)

## seed: a realistic 30-day history through the API of the running sandbox (PAYMENTS=1000)
seed: $(STAMP)
	$(BIN)/payflow seed --payments $(or $(PAYMENTS),1000)

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; no browser is
# downloaded by Playwright itself. Installed once per machine, with sudo when not root.
CHROMIUM := /usr/lib/chromium/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests (apt-get, once per machine)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

## test: install (the venv, and Chromium for the browser tests), then run the whole suite
test: $(STAMP) $(CHROMIUM) $(CHECKOUT_JS) $(DASHBOARD_BUILD)
	$(BIN)/python -m pytest

## bench: speed and cost against the embedded sandbox: a table, and bench/results.json
bench: $(STAMP)
	$(BIN)/python bench/run.py --payments $(or $(PAYMENTS),200)

## recon-bench: reconcile PAYMENTS (2,000) payments with 1% injected discrepancies: found, false positives, time
recon-bench: $(STAMP)
	$(BIN)/python bench/recon.py --payments $(or $(PAYMENTS),2000)

## dashboard-bench: the dashboard's page and API times with PAYMENTS (2,000) seeded, headless Chromium
dashboard-bench: $(STAMP) $(CHROMIUM) $(DASHBOARD_BUILD)
	$(BIN)/python bench/dashboard.py --payments $(or $(PAYMENTS),2000) --runs $(or $(RUNS),5)

## chaos: 1,000 payments under injected faults, then every invariant (PAYMENTS=... to change)
chaos: $(STAMP)
	$(BIN)/python -m payflow.chaos --payments $(or $(PAYMENTS),1000)

## load: locust, headless and bounded (10 users, 30 s), against a sandbox of its own
load: $(STAMP)
	$(BIN)/python bench/load.py -u 10 -r 5 -t 30s

## lint: ruff (format check and lint) and mypy
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy app.py chalicelib payflow

## format: rewrite the code with ruff (format, then the fixable lint)
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## package: `chalice package` merged with infra/ into build/ (sam.json, deployment.zip)
package: $(STAMP) $(CHECKOUT_JS) $(DASHBOARD_BUILD)
	$(BIN)/python -m payflow.deploy package --stage $(STAGE)

## deploy: package, then create or update stack payflow-$(STAGE) in the environment's AWS account
deploy: aws-check package
	$(BIN)/python -m payflow.deploy deploy --stage $(STAGE)

# Before packaging: no credentials or no region is one line at once, not after a minute.
aws-check: $(STAMP)
	@$(BIN)/python -m payflow.deploy check

## destroy: delete stack payflow-$(STAGE) (tables and their data) and its artifacts bucket
destroy: $(STAMP)
	$(BIN)/python -m payflow.deploy destroy --stage $(STAGE)

## localstack-up: start LocalStack (localstack/docker-compose.yml) and wait until it is healthy
localstack-up:
	$(COMPOSE) up -d --wait

## deploy-localstack: the same package, deployed to LocalStack at $(LOCALSTACK_URL)
deploy-localstack: package
	$(BIN)/python -m payflow.deploy deploy --stage $(STAGE) --endpoint-url $(LOCALSTACK_URL)

## localstack-down: stop LocalStack and drop its state
localstack-down:
	$(COMPOSE) down -v

## clean: remove the virtualenv, build output and caches
clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
	rm -rf clients/js/node_modules chalicelib/static/js dashboard/node_modules chalicelib/static/dashboard
