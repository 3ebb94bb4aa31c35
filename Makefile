# qstash-sim: `make serve` runs the simulator, `make test` runs every test. Both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
ARGS   ?=

.PHONY: venv venv-test serve test lint test-floors e2e-deps bench fuzz soak ci clean help check-python

help:
	@echo "make serve        run the simulator on http://$(HOST):$(PORT) (ARGS='--clock virtual --seed 7' for more)"
	@echo "make test         install everything into $(VENV) and run the whole test suite"
	@echo "make lint         ruff (lint + format), mypy --strict, import-linter (what CI runs first)"
	@echo "make test-floors  the whole suite on the lowest dependency releases allowed (in .venv-floors)"
	@echo "make bench        run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make fuzz         contract fuzzing with schemathesis, positive and negative (>= 1,000 cases a run, zero failures)"
	@echo "make soak         the full nothing-lost load test (10,000 messages from 50 clients)"
	@echo "make clean        remove the venvs, node_modules and build output"

# Python 3.11 or newer, checked before any venv is made (and an old .venv is made again).
check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "qstash-sim needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." \
	       "Run: make $(MAKECMDGOALS) PYTHON=python3.11 (or python3.12, python3.13)"; exit 1; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  echo "$(VENV) holds $$($(PY) --version 2>&1), older than 3.11: making it again"; rm -rf $(VENV); fi

# The runtime only (what `make serve` needs): aiohttp, pyyaml, jsonschema, croniter.
$(VENV)/.runtime: pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing qstash-sim into $(VENV) ..."
	@PYTHONWARNINGS=ignore $(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $@

# Plus the test and lint extras (what `make test` and `make lint` need).
$(VENV)/.installed: $(VENV)/.runtime
	@echo "installing the test tools into $(VENV) ..."
	@PYTHONWARNINGS=ignore $(PY) -m pip install -q --disable-pip-version-check -e '.[test,lint]'
	@touch $@

venv: check-python $(VENV)/.runtime
venv-test: check-python $(VENV)/.installed

tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "make test: npm not found. The end-to-end tests drive the real @sapiom/fetch SDK with Node.js 18+;" \
	       "install Node.js and npm (Debian: apt-get install nodejs npm), then run make test again"; exit 1; }
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	@touch $@

# The README's payment story: node examples/sapiom-app/app.js, with the same pinned @sapiom/fetch.
examples/sapiom-app/node_modules/.installed: examples/sapiom-app/package.json examples/sapiom-app/package-lock.json
	npm ci --prefix examples/sapiom-app --no-audit --no-fund --loglevel=error
	@touch $@

e2e-deps: tests/e2e/node_modules/.installed examples/sapiom-app/node_modules/.installed

serve: venv
	$(PY) -m qstash_sim serve --host $(HOST) --port $(PORT) $(ARGS)

test: venv-test e2e-deps
	$(PY) -m pytest -q -n 2 $(ARGS)

lint: venv-test
	PY=$(PY) .ci/lint

# The whole suite with every direct dependency at the lowest release pyproject.toml allows
# (constraints/floors.txt): proves the floors are true. Its own venv, so .venv keeps the newest releases.
FLOORS_VENV ?= .venv-floors
FLOORS_PY   := $(FLOORS_VENV)/bin/python

$(FLOORS_VENV)/.installed: pyproject.toml setup.py constraints/floors.txt
	@test -x $(FLOORS_PY) || $(PYTHON) -m venv $(FLOORS_VENV)
	@echo "installing the dependency floors (constraints/floors.txt) into $(FLOORS_VENV) ..."
	@PYTHONWARNINGS=ignore $(FLOORS_PY) -m pip install -q --disable-pip-version-check -c constraints/floors.txt -e '.[test]'
	@touch $@

# Left out here, run by make test on the newest releases: tests/ui/ (the browser tests prove the dashboard,
# pinned playwright and Debian's chromium, which the runtime floors do not change; every request the page
# makes is covered by API tests that do run here) and the schemathesis runs of tests/contract/test_fuzz.py
# (about 4 minutes of the suite's 2 cores; the contract it checks is the same file on any release, and the
# rest of the suite exercises the same routes and validation on the floors), and tests/test_downstream.py (it
# installs the wheel into venvs of its own, with the newest releases, whatever this venv holds).
test-floors: check-python $(FLOORS_VENV)/.installed e2e-deps
	$(FLOORS_PY) -m pytest -q -n 2 --ignore=tests/ui --ignore=tests/test_downstream.py --deselect tests/contract/test_fuzz.py::test_every_operation_answers_as_documented $(ARGS)

bench: venv-test
	$(PY) -m benchmarks $(ARGS)

# schemathesis over every operation (qstash.* aside, see NOT_FUZZED), 3 seeds x positive (every check on) and
# negative mode, >= 1,000 cases a run, no failure tolerated; -rP prints each run's cases and time.
fuzz: venv-test
	QSTASH_SIM_FUZZ=full $(PY) -m pytest -q -n 2 -rP tests/contract/test_fuzz.py $(ARGS)

# The full nothing-lost load: 10,000 messages, 50 clients, 20 queues, under scenarios/lossy-network.yaml
# (2 % of publishes dropped, 10 % of deliveries answered 503); -s shows its summary line.
soak: venv-test
	QSTASH_SIM_SOAK=full $(PY) -m pytest -q -s tests/core/test_nothing_lost.py tests/http/test_hostile.py $(ARGS)

# What .ci/run does on a fresh clone: the gates, the suite on the newest releases, then on the floors.
ci: lint test test-floors

clean:
	rm -rf $(VENV) .venv-floors tests/e2e/node_modules examples/sapiom-app/node_modules build dist *.egg-info .mypy_cache .ruff_cache
