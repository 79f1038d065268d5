# Every target creates or reuses .venv and installs the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
# The local instance's storage: batched (deploy/dagster-local.yaml, the default) or stock (the root
# dagster.yaml: Dagster's own SQLite storage). README "The Dagster instance".
INSTANCE ?= batched
ifeq ($(filter $(INSTANCE),batched stock),)
$(error INSTANCE=$(INSTANCE): expected batched or stock)
endif
INSTANCE_YAML := $(if $(filter stock,$(INSTANCE)),dagster.yaml,deploy/dagster-local.yaml)

.PHONY: install instance demo dev test clean bench prod prod-stop

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(STAMP)

# The embedded instance: INSTANCE_YAML copied into DAGSTER_HOME (runs and events in SQLite files there).
instance:
	mkdir -p $(DAGSTER_HOME)
	cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

## demo: seed ~120 days of sources ending yesterday, backfill every grain, print a summary; writes .env
## (METRICS_START_DATE, METRICS_DATA_DIR, DAGSTER_HOME), so a plain `dagster dev` here opens the same data
demo: install instance
	$(BIN)/metrics-pipeline demo

## dev: open the Dagster UI (http://127.0.0.1:3000) on the demo data and runs
dev: install instance
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

## clean: delete data/ (demo sources, warehouse, instance) and the settings `make demo` wrote into .env
clean:
	rm -rf data .pytest_cache
	test ! -f .env || sed -i -e '/^METRICS_START_DATE=/d' -e '/^METRICS_DATA_DIR=/d' -e '/^DAGSTER_HOME=/d' .env
