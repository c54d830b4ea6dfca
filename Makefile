# The two commands: `make demo` and `make test`. Both start from nothing but Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test check fmt serve bench clean screenshots

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian run 'apt-get install -y python3-venv'"; exit 1; }

$(VENV)/.runtime: requirements/lock.txt pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements/lock.txt
	$(PIP) install --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.lock.txt pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements/dev.lock.txt
	$(PIP) install --no-deps -e .
	@touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/tidings demo

serve: $(VENV)/.runtime
	$(BIN)/tidings serve

# --durations=15: the slowest tests, printed at the end of every run (CI included).
test: $(VENV)/.dev
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

# The README's pictures (docs/img/*.png), from the real demo in headless Chromium. The test
# run takes the same screenshots into a temporary directory, so it never touches the tree.
screenshots: $(VENV)/.dev
	SCREENSHOTS_DIR=$(CURDIR)/docs/img $(BIN)/python -m pytest tests/browser/test_screenshots.py -q

check: $(VENV)/.dev
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

fmt: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/load.py --streams 1000

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
