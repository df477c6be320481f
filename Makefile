# schemalog — every target builds .venv from nothing when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test lint live live-measure faults demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# coverage itself (no pytest-cov) starts the measurement: it must be running before pytest imports
# the schemalog plugin, and it follows the CLI processes the tests start (pyproject.toml).
test: lint
	$(VENV)/bin/coverage erase
	$(VENV)/bin/coverage run -m pytest
	$(VENV)/bin/coverage combine -q
	$(VENV)/bin/coverage report --fail-under=95

# Every live scenario (schemalog beside a real application process), both journal modes;
# `make test` runs a bounded subset. LIVE_ARGS e.g. "-k restore" or "-x".
live: venv
	SCHEMALOG_LIVE=1 $(PY) -m pytest tests/live -p no:cacheprovider $(LIVE_ARGS)

# The application's commit latency during a 50-migration run (a measurement, not a test).
live-measure: venv
	$(PY) -m tests.live.measure $(MEASURE_ARGS)

# The whole fault-injection campaign (tests/faults, about 15-20 minutes): every syscall class x
# operation x errno, 41 free-space levels, the power-loss states. `make test` runs a sample.
# Results: one JSON line per case in faults-results.jsonl, summarised at the end.
FAULTS_RESULTS ?= faults-results.jsonl
faults: venv
	rm -f $(FAULTS_RESULTS)
	SCHEMALOG_FAULTS=full SCHEMALOG_FAULTS_RESULTS=$(abspath $(FAULTS_RESULTS)) \
		$(PY) -m pytest tests/faults -m faults -p no:cacheprovider $(FAULTS_ARGS); \
		status=$$?; $(PY) -m tests.faults summary $(FAULTS_RESULTS); exit $$status

demo: venv
	$(PY) demo/run_demo.py

bench: venv
	$(PY) -m compileall -q schemalog journal engine  # as an installed package would have it
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/journal_bench.py
	$(PY) bench/fleet_bench.py $(FLEET_BENCH_ARGS)  # 1,000 tenants x 20 migrations

clean:
	rm -rf $(VENV) .pytest_cache .coverage build *.egg-info demo/out bench/work faults-results.jsonl
