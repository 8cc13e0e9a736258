# make run: set up .venv and print the mode matrix over the default hosts and guests.
# make test: set up .venv with the test extras and run the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/spapr-irq matrix

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_resolve.py
	$(BIN)/python benchmarks/bench_xics.py
	$(BIN)/python benchmarks/bench_xive.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
