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

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

clean:
	rm -rf $(VENV) .venv-kserve .pytest_cache .mypy_cache .ruff_cache
