# sitegen: every target sets up its own virtualenv first, so a fresh checkout needs only python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= channels.yaml
# sitegen and what it runs on; then, for the tests, lint and benchmarks only, their tools
# (pytest, ruff, playwright...): a mirror's host never needs those.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup mirror test test-fast test-integration lint format demo bench render serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --quiet -e '.[test]'
	touch $(TEST_STAMP)

# What cron runs: `make -s setup && .venv/bin/sitegen mirror` passes sitegen's own exit status on
# (make reports any failed recipe as 2). Silent when it succeeds, so cron mails nothing: pip runs
# with -qq (errors only), as setuptools warns on every editable install.
setup: $(STAMP)

mirror: $(STAMP)
	$(BIN)/sitegen mirror -c $(CONFIG) $(ARGS)

render: $(STAMP)
	$(BIN)/sitegen render -c $(CONFIG)

serve: $(STAMP)
	$(BIN)/sitegen serve -c $(CONFIG)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Two kinds of tests (markers in pyproject.toml): unit tests are pure and take seconds;
# integration tests run real servers, browsers and conda installs on 127.0.0.1 (minutes).
# Tests are spread over two worker processes per core (at most 8; every test starts its own
# servers on free ports and works in its own temporary directory): the integration tests
# mostly wait on real servers and subprocesses, so one worker per core leaves the cores half
# idle. A worker that runs out of tests takes some from another (worksteal).
TEST_WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 1); w=$$((n * 2)); echo $$((w > 8 ? 8 : w)))
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: lint
	$(PYTEST)

test-fast: lint
	$(PYTEST) -m unit

test-integration: $(TEST_STAMP)
	$(PYTEST) -m integration

demo: $(STAMP)
	$(BIN)/sitegen demo --dir demo

# Benchmarks (minutes; not part of `make test`): make bench BENCH_ARGS='--quick --only sync'
bench: $(TEST_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# What make built, and the demo. Not ./site: it is the mirror `make mirror` published (what the
# web server serves, with its history and state), which no target here makes again.
clean:
	rm -rf $(VENV) demo build *.egg-info
