# Outpost: `make run` serves the seeded demo fleet, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make run` feeds the demo fleet a reading per asset every SIMULATE_EVERY seconds (0: off)
SIMULATE_EVERY ?= 10
export OUTPOST_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/outpost: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/outpost

run: $(BIN)/outpost
	$(BIN)/outpost db upgrade
	$(BIN)/outpost demo
	@echo ""
	@echo "  Outpost is starting on http://$(HOST):$(PORT)"
	@echo "  Log in as admin@demo.outpost.local / outpost-demo-admin"
	@echo "  (read-only: viewer@demo.outpost.local / outpost-demo-viewer)"
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs"
	@if [ "$(SIMULATE_EVERY)" = 0 ]; then echo "  Demo telemetry: off"; else \
	  echo "  Demo telemetry: a reading per asset every $(SIMULATE_EVERY) s (SIMULATE_EVERY=0: off)"; fi
	@echo ""
	@sim=; \
	if [ "$(SIMULATE_EVERY)" != 0 ]; then \
	  $(BIN)/outpost simulate --url http://$(HOST):$(PORT) --every $(SIMULATE_EVERY) & sim=$$!; \
	fi; \
	trap 'trap - EXIT INT TERM; [ -z "$$sim" ] || { kill $$sim 2>/dev/null; wait $$sim; }' \
	  EXIT INT TERM; \
	$(BIN)/outpost serve --host $(HOST) --port $(PORT)

lint: $(BIN)/outpost
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(BIN)/outpost
	$(BIN)/mypy

pytest: $(BIN)/outpost
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(BIN)/outpost
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
