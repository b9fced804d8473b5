# The two commands: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONPATH := $(CURDIR)
ROLE ?= advisor
BRANCH ?= BR01

.PHONY: install run test test-postgres test-clock test-contract lint format token bench clean

# Dependencies' bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set no
# import writes it, and every service process (and each test that starts one) would compile
# FastAPI, SQLAlchemy and pydantic from source again (workorders' import: 9.0 s → 3.4 s).
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --inexact --quiet --compile-bytecode
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m tools.run

test: install
	$(BIN)/python -m pytest

# The PostgreSQL leg: store and end-to-end tests on throwaway databases at 127.0.0.1:5432.
test-postgres: install
	WORKSHOP_TEST_BACKEND=postgres $(BIN)/python -m pytest -m "store or e2e"

# The clock legs: the in-process suite (real-process tests keep the real time and are left
# out) with this process's clock moved to instants that have caught date bugs: 23:30 in
# Shanghai on the last day of a month and year; 16:05 UTC on a Sunday that ends a month
# (already Monday the 1st in Shanghai); a year from today. One instant:
# `make test-clock CLOCK_AT=2027-02-28T23:30:00+08:00`.
CLOCK_AT ?= 2026-12-31T23:30:00+08:00 2027-01-31T16:05:00+00:00 +366d
test-clock: install
	@set -e; for at in $(CLOCK_AT); do \
		echo "== clock at $$at"; \
		WORKSHOP_TEST_NOW=$$at $(BIN)/python -m pytest -m "not e2e" -n 2 -q -p no:cacheprovider; \
	done

# The contract leg: schemathesis against the four services as real processes on a real
# nats-server, each held to its OpenAPI (tools/contract.py; CONTRACT_MAX_TIME seconds per
# service, 60 by default; reports under var/contract/).
test-contract: install
	$(BIN)/python -m tools.contract

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services tools tests bench

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

token: install
	@$(BIN)/python -m shared.token --role $(ROLE) --branch $(BRANCH)

bench: install
	$(BIN)/python -m bench.propagation
	$(BIN)/python -m bench.intake_load
	$(BIN)/python -m bench.idle_memory
	$(BIN)/python -m bench.followup_worklist
	$(BIN)/python -m bench.reception_desk
	$(BIN)/python -m bench.workorders_board
	$(BIN)/python -m bench.clocking_instructions
	$(BIN)/python -m bench.records_archive
	$(BIN)/python -m bench.records_library
	$(BIN)/python -m bench.records_files
	$(BIN)/python -m bench.records_reports
	$(BIN)/python -m bench.records_webhooks
	$(BIN)/python -m bench.group_hour
	$(BIN)/python -m bench.staff_pages
	$(BIN)/python -m bench.followup_messages

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
