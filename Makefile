# schemalog — every target builds .venv from nothing when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest --cov --cov-branch --cov-report=term --cov-fail-under=95

demo: venv
	$(PY) demo/run_demo.py

bench: venv
	$(PY) -m compileall -q schemalog journal engine  # as an installed package would have it
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/journal_bench.py
	$(PY) bench/fleet_bench.py $(FLEET_BENCH_ARGS)  # 1,000 tenants x 20 migrations

clean:
	rm -rf $(VENV) .pytest_cache .coverage build *.egg-info demo/out bench/work
