# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?= --durations=15
PYTEST_WORKERS ?= auto
SERIAL_FILES := $(shell grep -rlE --include='*.py' 'mark\.serial' tests 2>/dev/null)

.PHONY: demo test lint typecheck bench bench-controller hotspots system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bcpctl demo

system-deps:
	scripts/install-system-deps.sh

# Real servers (PostgreSQL, sshd, Ceph RGW, Prometheus, age, ...) come from Debian packages
# that system-deps installs when missing; each worker starts its own. The suite runs on every
# core (at most four: each worker runs its own Ceph, PostgreSQL and sshd), then the tests
# marked `serial` (capacity tests) run alone, collected only from the files that use the mark
# (collecting all 3,500-odd tests again costs ~15 s of CPU for a one-test part; with no such file
# the whole tree is collected as before). mypy checks the types first ([tool.mypy]). Every
# part runs even when an earlier one failed, so one run shows every problem; any part failing,
# or a pytest part running no tests (exit 5), fails the target and is named at the end.
test: system-deps $(STAMP)
	@failed=""; \
	$(BIN)/mypy || failed="$$failed mypy"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist worksteal -m "not serial" $(PYTEST_ARGS) || failed="$$failed pytest"; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m serial $(PYTEST_ARGS) $(SERIAL_FILES) || failed="$$failed pytest-serial"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check .

# Static types of every package ([tool.mypy] in pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

# The backup benchmark (bcpctl vs restic and borg), then replication (bcpctl vs rclone to a
# local Ceph RGW and sshd) on a synthetic repository of REPLICATION_MIB MiB.
REPLICATION_MIB ?= 512
REPLICATION_ARGS ?= --synthetic $(REPLICATION_MIB) --out bench/out/replication.json
# PostgreSQL WAL archiving and restore-to-time, bcpctl vs pgBackRest under a pgbench load.
WAL_ARGS ?= --scale 20 --seconds 120 --backlog 48 --rounds 3 --out bench/out/wal.json
# The offsite's recovery point under that load: wal push + replicate --follow to Ceph RGW.
RPO_ARGS ?= --scale 20 --seconds 120 --out bench/out/rpo.json
bench: $(STAMP)
	scripts/install-system-deps.sh --bench
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run $(BENCH_ARGS)
	mkdir -p bench/out
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.replication $(REPLICATION_ARGS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.wal $(WAL_ARGS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.rpo $(RPO_ARGS)

# A prefecture on one controller (issue 23): 1,452 tiny systems under one serve, 30 min per
# phase by default (CONTROLLER_ARGS="--window 300" for a shorter look), and a 100,000-snapshot
# parent lookup.
CONTROLLER_ARGS ?= --index-demo 100000
bench-controller: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.controller $(CONTROLLER_ARGS)

# Where bcpctl spends its time in each benchmark phase (py-spy; not timed).
hotspots: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.hotspots $(HOTSPOTS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
