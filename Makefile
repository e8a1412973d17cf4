# Every target sets up what it needs on a fresh machine: nothing is installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint format clean package deploy destroy localstack-up deploy-localstack localstack-down bench chaos load

STAGE ?= dev
LOCALSTACK_URL ?= http://localhost:4566
COMPOSE ?= docker compose -f localstack/docker-compose.yml

$(STAMP): pyproject.toml requirements.lock requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "PayFlow needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip download --quiet --dest $(VENV)/wheelhouse -r requirements.txt  # offline packaging
	@touch $(STAMP)

## dev: install, then run the embedded sandbox in the foreground (Ctrl-C stops it)
dev: $(STAMP)
	$(BIN)/python -m payflow.sandbox

## test: install, then run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: speed and cost against the embedded sandbox: a table, and bench/results.json
bench: $(STAMP)
	$(BIN)/python bench/run.py --payments $(or $(PAYMENTS),200)

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

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## package: `chalice package` merged with infra/ into build/ (sam.json, deployment.zip)
package: $(STAMP)
	$(BIN)/python -m payflow.deploy package --stage $(STAGE)

## deploy: package, then create or update stack payflow-$(STAGE) in the environment's AWS account
deploy: package
	$(BIN)/python -m payflow.deploy deploy --stage $(STAGE)

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

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
