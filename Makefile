# `make run` and `make test` create the virtual environment themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The benchmarks' own venv: the project plus the anchors they compare with (the `bench` extra),
# kept out of the test venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp
UV_VERSION  := 0.13.9

.PHONY: run test lint format bench lock k8s stack clean

# Every version comes from uv.lock (the whole dependency tree, locked): a fresh clone installs
# exactly what CI tested. `--locked` refuses a lock that pyproject.toml has moved away from;
# `make lock` updates it. uv itself is pinned and lives in the venv (`--inexact` keeps it there).
$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv sync --quiet --locked --inexact --extra dev
	touch $(STAMP)

# The database first (the SQLite file in instance/ unless DATABASE_URL says otherwise), then the
# development server: both build the app with the same APP_ENV, so they agree on the database.
run: $(STAMP)
	APP_ENV=$${APP_ENV:-development} $(BIN)/flask --app blog_api db upgrade
	$(BIN)/python run.py

# The whole loop without Docker: the app under gunicorn, Debian's Prometheus and Alertmanager with
# deploy/'s configs, demo traffic; prints the URLs, Ctrl-C stops it all (deploy/local_stack.py).
stack: $(STAMP)
	$(BIN)/python deploy/local_stack.py

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

$(BENCH_STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(BENCH_VENV) $(BENCH_VENV)/bin/uv sync --quiet --locked --inexact \
		--extra dev --extra bench
	touch $(BENCH_STAMP)

# After a change to pyproject.toml's dependencies: re-resolve, then commit uv.lock with it.
lock:
	test -x $(BIN)/uv || ($(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv==$(UV_VERSION))
	$(BIN)/uv lock

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/overhead.py $(OVERHEAD_ARGS)
	$(BENCH_VENV)/bin/python bench/workers.py $(WORKERS_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) instance .pytest_cache
