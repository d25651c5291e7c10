# The two commands of the quick start: `make serve` and `make test`; `make unit` while working.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test unit lint models clean system-tools

serve: $(VENV)/.runtime
	scripts/serve.sh

test: $(VENV)/.dev system-tools lint
	$(BIN)/pytest

# The fast tiers, on every core: pure unit tests and the entry points in-process.
unit: $(VENV)/.dev
	$(BIN)/pytest -n auto tests/unit tests/http

# Tools the tests run that come from the system's package manager (Debian).
system-tools:
	@command -v shellcheck >/dev/null || { apt-get update -qq && apt-get install -y -qq shellcheck; }
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

models: $(VENV)/.runtime
	$(BIN)/python -m models regenerate

# Each step says what it does, and pip shows each package, so a first run is never silent.
# Order-only: a new interpreter alone is no reason to install again.
$(BIN)/python:
	@echo "==> creating $(VENV) with $$($(PYTHON) --version 2>&1)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	@echo "==> installing the runtime dependencies (requirements.txt) into $(VENV): about a minute the first time"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@
	@echo "==> $(VENV) has the runtime dependencies"

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	@echo "==> installing the runtime, test and tool dependencies (requirements-dev.txt) into $(VENV): a few minutes the first time"
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime
	@echo "==> $(VENV) has the runtime, test and tool dependencies"

clean:
	rm -rf $(VENV) .venv-kserve .pytest_cache .mypy_cache .ruff_cache
