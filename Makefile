# Every target creates or reuses .venv and installs the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home

.PHONY: install demo dev test clean bench prod prod-stop

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)

# The embedded instance: the root dagster.yaml copied into DAGSTER_HOME (runs/events in SQLite there).
$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## demo: seed ~120 days of sources ending yesterday, backfill every grain, print a summary
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/metrics-pipeline demo

## dev: open the Dagster UI (http://127.0.0.1:3000) on the demo data and runs
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## test: the whole test suite (starts a throwaway PostgreSQL server itself)
test: install
	$(BIN)/python -m pytest

## bench: seed sources, measure backfill methods, nightly runs, memory, generator (README "Performance")
## BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--scale 3 --days 365 --postgres"
bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

## prod: the production deployment on this machine, in the background: PostgreSQL (instance, warehouse,
## seeded sources), a local S3 for compute logs, dagster-daemon and dagster-webserver on deploy/ (README
## "Running on PostgreSQL in production") and the metrics exporter for Prometheus. PROD_DATA (default ./data/prod) keeps
## its data, PROD_PORT the UI's port, PROD_EXPORTER_PORT the exporter's (9464).
PROD_DATA ?= $(CURDIR)/data/prod
PROD_PORT ?= 3000
PROD_EXPORTER_PORT ?= 9464
prod: install
	$(BIN)/python -m metrics_pipeline.local_stack start --data $(PROD_DATA) --port $(PROD_PORT) --exporter-port $(PROD_EXPORTER_PORT)

## prod-stop: stop what `make prod` started (its data stays in PROD_DATA)
prod-stop:
	$(BIN)/python -m metrics_pipeline.local_stack stop --data $(PROD_DATA)

clean:
	rm -rf data .pytest_cache
