# Vigil. `make run` and `make test` set up everything they need on a bare machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint assets bench bench-peers clean-data

$(STAMP): pyproject.toml package-lock.json api/series/_fastpoints.c
	scripts/ensure-system-deps run
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'  # also compiles api/series/_fastpoints.c in place
	touch $@

# Pinned front-end files from npm into api/static/vendor (cheap when already there).
assets:
	scripts/vendor-assets

run: $(STAMP) assets
	$(BIN)/vigil run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The suite with line and branch coverage of api, notifier, prober and vigil, the processes the
# tests start included ([tool.coverage.*] in pyproject.toml; fails under its fail_under), then
# lines and branches per package (fails when lines are under 94 %). Two workers (pytest-xdist),
# each taking whole test files, so module fixtures (one browser, one daemon) start once.
test: $(STAMP) assets
	scripts/ensure-system-deps test
	cd tools/pglite && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; }  # TimescaleDB lane
	cd tests/receivers/node && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; }  # winston-loki
	$(MAKE) lint
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25 --cov --cov-report=term:skip-covered
	$(BIN)/python -m tests.support.coverage_summary --fail-under-lines 94

bench: $(STAMP) assets
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/series.py
	$(BIN)/python bench/journal.py
	$(BIN)/python -m bench.prober
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/remote_write.py
	$(BIN)/python bench/log_metrics.py
	$(BIN)/python bench/trace.py --journal 1000000 --requests 1000000
	$(BIN)/python bench/send.py

# Vigil beside VictoriaMetrics (Debian package, installed if missing): same data, ratios.
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py --timescale 1000,10000

clean-data:
	-$(BIN)/python -c 'from vigil.cluster import embedded_cluster; from vigil.settings import Settings; embedded_cluster(Settings.from_env()).stop()'
	rm -rf .vigil
