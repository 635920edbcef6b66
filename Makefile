# Two entry points, each setting everything up on a fresh machine (idempotent):
#   make demo   - the FSDD recipe end to end
#   make test   - the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.asrdistill-installed
# FSDD: the team's copy beside the project if present, else the recipe downloads it.
CORPUS_DIR ?= $(if $(wildcard ../shared/data/fsdd/recordings),$(abspath ../shared/data/fsdd),)

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, exactly this version (the CPU wheel; anything else pulls CUDA packages)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all]'
	touch $@

demo: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH egs/fsdd/run.sh $(if $(CORPUS_DIR),--corpus-dir $(CORPUS_DIR),)

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) egs/*/data egs/*/exp
