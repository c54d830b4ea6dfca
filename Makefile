# The two commands: `make demo` and `make test`. Both start from nothing but Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test check fmt serve bench bench-anchor clean screenshots mutants openapi

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

# The npm package's dev tools (TypeScript, React, Vue: tests/test_js.py) from package-lock.json.
# Without npm the tests that need them skip, except under CI=true, where this step fails.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	elif [ -n "$$CI" ] && [ "$$CI" != "false" ] && [ "$$CI" != "0" ]; then \
	  echo "npm is required (apt-get install nodejs npm; .ci/run does)"; exit 1; \
	else echo "npm not found: the npm package's tests will skip"; fi

# --durations=15: the slowest tests, printed at the end of every run (CI included).
# PYTEST_WORKERS processes (pytest-xdist) share the files of the suite, each file whole on one
# of them (--dist loadfile: a file's fixtures and servers stay together), handed out in the
# order tests/conftest.py gives them (long files first: --no-loadscope-reorder); 0 runs in this one.
PYTEST_WORKERS ?= 2
test: $(VENV)/.dev node_modules/.package-lock.json
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# The README's pictures (docs/img/*.png), from the real demo in headless Chromium. The test
# run takes the same screenshots into a temporary directory, so it never touches the tree.
screenshots: $(VENV)/.dev
	SCREENSHOTS_DIR=$(CURDIR)/docs/img $(BIN)/python -m pytest tests/browser/test_screenshots.py -q

check: $(VENV)/.dev
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers: [tool.importlinter] in pyproject.toml

fmt: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Mutation testing (docs/testing.md): mutmut over delivery/, store/, auth.py, service.py and the
# API guards, with the fast tests of [tool.mutmut] in pyproject.toml. Not part of `make test`.
# MUTANTS_BUDGET: wall-clock cap in seconds (the run is interrupted and keeps what it finished;
# run again with MUTANTS empty to continue). MUTANTS: mutant-name globs, e.g.
# 'tidings.store.readstate.*' (named mutants are always rerun). Per-mutant timeout: pyproject.
MUTANTS_BUDGET   ?= 3600
MUTANTS_CHILDREN ?= 1
MUTANTS_NICE     ?= 10
MUTANTS          ?=
mutants: $(VENV)/.dev
	@nice -n $(MUTANTS_NICE) timeout -s INT -k 60 $(MUTANTS_BUDGET) \
	  $(BIN)/mutmut run --max-children $(MUTANTS_CHILDREN) $(MUTANTS); rc=$$?; \
	  if [ $$rc -eq 124 ]; then echo "mutants: MUTANTS_BUDGET=$(MUTANTS_BUDGET)s reached; results so far kept"; \
	  elif [ $$rc -ne 0 ]; then exit $$rc; fi
	@$(BIN)/mutmut results --all true | awk -F': ' '{ m = $$1; sub(/^ +/, "", m); \
	  sub(/\.x(ǁ|_).*/, "", m); n[m "\t" $$2]++ } END { for (k in n) print k "\t" n[k] }' \
	  | sort | awk -F'\t' 'BEGIN { printf "%-34s %-12s %s\n", "module", "status", "mutants" } \
	  { printf "%-34s %-12s %s\n", $$1, $$2, $$3 }'

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks.load --streams 1000

# tidings beside nginx + Nchan (../shared/anchors/nchan), same load, one run; installs the
# anchor from Debian when it is missing (root). BENCH_ARGS e.g. "--scenario 1000x20".
bench-anchor: $(VENV)/.dev
	@dpkg -L libnginx-mod-nchan 2>/dev/null | grep -q 'ngx_nchan_module\.so$$' || { \
	  echo "bench-anchor: installing nginx libnginx-mod-nchan"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends nginx libnginx-mod-nchan; }
	$(BIN)/python -m benchmarks.anchor $(BENCH_ARGS)

# The API contract: docs/openapi.json is what the server serves at /openapi.json (a test
# compares them). Run after changing a route, a schema or a problem code.
openapi: $(VENV)/.runtime
	$(BIN)/tidings openapi --output docs/openapi.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
