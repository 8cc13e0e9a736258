# make run: set up .venv and print the mode matrix over the default hosts and guests.
# make test: set up .venv with the test extras and run the test suite (with real QEMU boots when
#            `make conform-setup` has installed QEMU and the guest).
# make conform-setup: install qemu-system-ppc and fetch a ppc64le Linux guest into .conform/.
# make conform: compare the real QEMU with the model over the default cases.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench clean conform-setup conform

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

conform-setup: $(VENV)/.installed
	PYTHON=$(BIN)/python tools/conform-setup.sh

conform: $(VENV)/.installed
	$(BIN)/spapr-irq conform --jobs 2

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_resolve.py
	$(BIN)/python benchmarks/bench_xics.py
	$(BIN)/python benchmarks/bench_xive.py
	$(BIN)/python benchmarks/bench_migration.py
	$(BIN)/python benchmarks/bench_check.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis .conform
