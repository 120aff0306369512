# The two commands: `make demo` and `make test`. Both create .venv on first use.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

TIMESCALEDB := ../shared/timescaledb/install.sh

.PHONY: demo test lint check-python timescaledb screenshots clean

demo: $(VENV)/.installed
	$(BIN)/vigil demo

test: $(VENV)/.installed-dev lint timescaledb
	$(BIN)/python -m pytest

# The README's pictures of the pages (docs/screenshots/*.png), taken by the page tests in
# real Chromium (Debian's `chromium`; Playwright cannot download a browser here).
screenshots: $(VENV)/.installed-dev
	@$(BIN)/python -c 'from vigil.embedded.chromium import executable; exit(executable() is None)' \
		|| { echo "make screenshots needs Chromium: apt-get install chromium"; exit 1; }
	VIGIL_SCREENSHOTS=1 $(BIN)/python -m pytest -q \
		tests/api/web tests/gateway/test_web_page.py

# TimescaleDB is on no package index these machines reach: its tests take it from
# ../shared when that folder is there (into the embedded PostgreSQL of .venv), and skip,
# saying why, when it is not.
timescaledb: $(VENV)/.installed-dev
	@if [ -f $(TIMESCALEDB) ] && [ "$$(uname -m)" = x86_64 ]; then \
		bash $(TIMESCALEDB) $(VENV) || echo "TimescaleDB could not be installed: its tests skip"; \
	else \
		echo "$(TIMESCALEDB) not found (or not x86_64): the TimescaleDB tests skip"; \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check-python:
	@test -n "$(PYTHON)" || { echo "Vigil needs Python 3.11 or newer (python3 --version)"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
		echo "Python's venv module is missing; on Debian/Ubuntu: sudo apt install python3-venv"; exit 1; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .vigil .pytest_cache .mypy_cache .ruff_cache
