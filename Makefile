# qstash-sim: `make serve` runs the simulator, `make test` runs every test. Both create .venv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
ARGS   ?=

.PHONY: venv serve test e2e-deps bench fuzz soak clean help

help:
	@echo "make serve   run the simulator on http://$(HOST):$(PORT) (ARGS='--clock virtual --seed 7' for more)"
	@echo "make test    install everything into $(VENV) and run the whole test suite"
	@echo "make bench   run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make fuzz    contract fuzzing with schemathesis (>= 1,000 cases per seed, zero failures)"
	@echo "make soak    the full nothing-lost load test (10,000 messages from 50 clients)"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	@touch $@

e2e-deps: tests/e2e/node_modules/.installed

serve: venv
	$(PY) -m qstash_sim serve --host $(HOST) --port $(PORT) $(ARGS)

test: venv e2e-deps
	$(PY) -m pytest -q -n 2 $(ARGS)

bench: venv
	$(PY) -m benchmarks $(ARGS)

# >= 1,000 schemathesis cases per seed over 3 seeds, every check on, no failure tolerated.
fuzz: venv
	QSTASH_SIM_FUZZ=full $(PY) -m pytest -q tests/contract/test_fuzz.py $(ARGS)

# The full nothing-lost load: 10,000 messages, 50 clients, 20 queues, under scenarios/lossy-network.yaml
# (2 % of publishes dropped, 10 % of deliveries answered 503); -s shows its summary line.
soak: venv
	QSTASH_SIM_SOAK=full $(PY) -m pytest -q -s tests/core/test_nothing_lost.py tests/http/test_hostile.py $(ARGS)

clean:
	rm -rf $(VENV) tests/e2e/node_modules build dist *.egg-info
