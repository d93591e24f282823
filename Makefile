# billstream: `make help` lists the targets. Everything installs itself from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SIMULATE_ARGS ?= --rate 50 --duration 60
DURATION ?= 600
RATE ?= 1000

.DEFAULT_GOAL := help
.PHONY: help deps-base deps-test install dev test test-unit test-integration lint format kafka-up kafka-down kafka-status cluster-up cluster-down cluster-status clean bench audit fuzz simulate bench-ingest bench-api bench-worker bench-redrive bench-cohorts bench-drift bench-state bench-scale soak

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

deps-base: ## system packages install/dev use (python3 venv, Java 17+, Maven): apt-get as root, else names them
	@scripts/system-deps.sh base

deps-test: deps-base ## + what the suite uses (kcat, PostgreSQL, promtool/prometheus, Go, curl) and stripe-mock
	@scripts/system-deps.sh test
	@scripts/stripe-mock.sh install

install: deps-base $(STAMP) ## create .venv with billstream and its dev tools (pinned by constraints.txt)
	scripts/kafka/kafka.sh fetch

dev: install ## run broker + ingest + worker + api in the foreground; Ctrl-C stops everything
	scripts/with-kafka.sh $(BIN)/billstream dev

simulate: install ## signed Stripe traffic to a running ingest: SIMULATE_ARGS="--rate 50 --duration 60"
	$(BIN)/billstream simulate $(SIMULATE_ARGS)

test: install deps-test ## the whole suite (unit + integration against the real broker)
	scripts/test.sh $(PYTEST_ARGS)

test-unit: install deps-test ## unit tests only (no broker)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check billstream tests bench
	$(BIN)/ruff format --check billstream tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix billstream tests bench
	$(BIN)/ruff format billstream tests bench

audit: install ## audit the pinned dependencies for known vulnerabilities (needs PyPI's JSON API)
	$(BIN)/pip install -q pip-audit
	grep -v '^#' constraints.txt | $(BIN)/pip-audit --no-deps --disable-pip -r /dev/stdin

fuzz: install ## long fuzzing: hypothesis at 10k examples/test, the end-to-end property at 3k (CI: 150 / 200)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:cacheprovider --timeout=3600 \
		--hypothesis-show-statistics tests/unit/fuzz $(PYTEST_ARGS)
	HYPOTHESIS_PROFILE=fuzz scripts/test.sh --timeout=7200 -s tests/integration/test_pipeline_property.py

bench-ingest: install ## ingest webhooks/s, p50/p99 vs a bare aiohttp handler (wrk: apt-get install wrk)
	scripts/with-kafka.sh $(BIN)/python -m bench.ingest $(BENCH_INGEST_ARGS)

bench-api: install ## api GET /accounts/{id} req/s, p99 and read-model catch-up vs in-run baselines (wrk)
	scripts/with-kafka.sh $(BIN)/python -m bench.api

bench-worker: install ## worker records/s vs a bare aiokafka consume→produce loop, and RSS after 100k customers
	scripts/with-kafka.sh $(BIN)/python -m bench.worker $(BENCH_WORKER_ARGS)

bench-redrive: install ## dlq replay records/s vs a bare aiokafka read→produce copy loop (dev broker)
	scripts/with-kafka.sh $(BIN)/python -m bench.redrive $(BENCH_REDRIVE_ARGS)

bench-cohorts: install deps-test ## 12-month dunning cohorts over 100k episodes on PostgreSQL vs an indexed count(*)
	$(BIN)/python -m bench.cohorts

bench-drift: install deps-test ## drift audit: Stripe calls and s per 1,000 customers vs bare stripe-python listing (stripe-mock)
	$(BIN)/python -m bench.drift $(BENCH_DRIFT_ARGS)

bench-state: install ## table value bytes per customer over a year of billing: this state vs schema 1's 7-day retention
	$(BIN)/python -m bench.state_size $(BENCH_STATE_ARGS)

bench-reducer: install ## worker per-record compute (apply_record + metrics) µs/record vs orjson loads+dumps; no broker
	$(BIN)/python -m bench.reducer $(BENCH_REDUCER_ARGS)

bench-scale: install ## worker RSS and restart-to-ready with 1M customers (both stores), api GET p99 vs 10k
	scripts/with-kafka.sh $(BIN)/python -m bench.scale $(BENCH_SCALE_ARGS)

VEGETA := $(BIN)/vegeta
$(VEGETA):
	GOBIN=$(abspath $(BIN)) go install github.com/tsenart/vegeta/v12@v12.13.0

soak: install deps-test $(VEGETA) ## whole pipeline at RATE webhooks/s for DURATION s (1000, 600): 5xx, visibility p99, RSS, lag
	DURATION=$(DURATION) RATE=$(RATE) $(BIN)/python -m bench.soak $(SOAK_ARGS)

kafka-up: install ## start the single-node KRaft broker under var/kafka (idempotent)
	scripts/kafka/kafka.sh up

kafka-down: ## stop the broker
	scripts/kafka/kafka.sh down

kafka-status: ## is the broker running, and its RSS
	scripts/kafka/kafka.sh status

cluster-up: install ## start a 3-broker KRaft cluster on 127.0.0.1:19092-19094 (KAFKA_CLUSTER_PORTS)
	scripts/kafka/cluster.sh up

cluster-down: ## stop the 3-broker cluster (its data stays under var/kafka)
	scripts/kafka/cluster.sh down

cluster-status: ## each cluster broker: running, pid, RSS; and the total RSS
	scripts/kafka/cluster.sh status

clean: kafka-down cluster-down ## stop the broker and remove var/ and .venv
	rm -rf var $(VENV)
