# lexcare: every routine command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
CACHE ?= $(HOME)/.cache/lexcare
RUN_DIR ?= $(CURDIR)/.run
LEXCARE_KAFKA_PORT ?= 9092
LEXCARE_MONGO_PORT ?= 27017
PYTEST_ARGS ?=
export PYTHONPATH := $(CURDIR)

# uv lives in the cache, outside any Python: a system Python that refuses installs
# (PEP 668) or has no pip still gets it (deploy/local/get_uv.py).
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv

.PHONY: help uv install tools run infra-up infra-down test test-unit test-integration \
        test-faults lint format schemas bench bench-large kpi clean model

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

uv: ## install uv (the Python package manager) if missing
	@test -x "$(UV)" || python3 deploy/local/get_uv.py "$(UV_VERSION)" "$(CACHE)/uv-$(UV_VERSION)"

tools: ## check/install java, maven, go, kcat, jq, chromium (Debian packages where missing)
	@bash deploy/local/ensure-tools.sh

install: uv tools ## install Python deps, fetch Kafka jars, build FerretDB (cached), train intake's first model
	@$(UV) sync --frozen --quiet
	@bash deploy/local/kafka.sh fetch
	@bash deploy/local/ferretdb.sh fetch
	@$(UV) run --frozen python -m services.intake train --if-missing --no-corrections >/dev/null

model: uv ## retrain intake's classifier on the corpus + stored corrections (kept only if no worse)
	@$(UV) run --frozen python -m services.intake train

run: install ## start Kafka, FerretDB and the six services (restarted if they die); Ctrl-C stops all
	@$(UV) run --frozen python deploy/local/run.py --data "$(RUN_DIR)" \
	    --kafka-port $(LEXCARE_KAFKA_PORT) --mongo-port $(LEXCARE_MONGO_PORT)

infra-up: install ## start only Kafka and FerretDB (ports LEXCARE_KAFKA_PORT, LEXCARE_MONGO_PORT)
	@bash deploy/local/kafka.sh start "$(RUN_DIR)/kafka" $(LEXCARE_KAFKA_PORT)
	@bash deploy/local/ferretdb.sh start "$(RUN_DIR)/ferretdb" $(LEXCARE_MONGO_PORT)

infra-down: ## stop what infra-up started
	@bash deploy/local/ferretdb.sh stop "$(RUN_DIR)/ferretdb"
	@bash deploy/local/kafka.sh stop "$(RUN_DIR)/kafka"

lint: uv ## ruff lint and format check
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .

format: uv ## ruff fix and format
	@$(UV) run --frozen ruff check --fix .
	@$(UV) run --frozen ruff format .

test: install lint ## install what is missing, lint, run every test (starts what it needs)
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

test-unit: install ## unit tests only (no broker, no database)
	@$(UV) run --frozen pytest tests/unit $(PYTEST_ARGS)

test-integration: install ## integration and e2e tests over the real broker and database
	@$(UV) run --frozen pytest tests/integration tests/e2e $(PYTEST_ARGS)

test-faults: install ## the slower fault-injection tier
	@$(UV) run --frozen pytest tests/faults $(PYTEST_ARGS)

schemas: uv ## write JSON Schemas of every event and the AsyncAPI document to docs/
	@$(UV) run --frozen python -m shared.schemas docs
	@$(UV) run --frozen python -m services asyncapi docs

bench: install ## benchmarks: prints a table, writes bench/results/*.json
	@$(UV) run --frozen python -m bench

bench-large: install ## benchmarks including the 1M-event cost-growth run
	@$(UV) run --frozen python -m bench --large

kpi: uv ## today's and this month's KPIs as a table (needs a running metrics service)
	@$(UV) run --frozen python -m services.metrics kpi

clean: ## stop local infra and delete all its data: Kafka's log, the database, the logs
	@bash deploy/local/ferretdb.sh stop "$(RUN_DIR)/ferretdb" --purge
	@bash deploy/local/kafka.sh stop "$(RUN_DIR)/kafka"
	rm -rf "$(RUN_DIR)"
