# `make run` and `make test` create the virtual environment themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The benchmarks' own venv: the project plus the anchors they compare with (the `bench` extra),
# kept out of the test venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.PHONY: run test lint format bench clean k8s

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The database first (the SQLite file in instance/ unless DATABASE_URL says otherwise), then the
# development server: both build the app with the same APP_ENV, so they agree on the database.
run: $(STAMP)
	APP_ENV=$${APP_ENV:-development} $(BIN)/flask --app blog_api db upgrade
	$(BIN)/python run.py

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The Kubernetes manifests copied from other files (the PrometheusRule from the rule files
# deploy/prometheus.yml loads, the Collector's ConfigMap from otel-collector.yaml).
k8s: $(STAMP)
	$(BIN)/python deploy/k8s/generate.py

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/overhead.py $(OVERHEAD_ARGS)
	$(BENCH_VENV)/bin/python bench/workers.py $(WORKERS_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) instance .pytest_cache
