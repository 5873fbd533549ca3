# `make run` and `make test` create the virtual environment themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The benchmarks' own venv: the project plus the anchors they compare with (the `bench` extra),
# kept out of the test venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

.PHONY: run test lint format bench clean stack

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
