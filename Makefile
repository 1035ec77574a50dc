# podium: one make command per stage of a Kaggle image competition. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
EXP    ?= configs/demo.yaml
COMP   ?= demo
ARGS   ?=
SRC    ?=
FORCE  ?=
PYTEST_ARGS ?=

BIN      := $(VENV)/bin
PODIUM   := $(BIN)/podium
STAMP    := $(VENV)/.installed
FORCE_FLAG := $(if $(FORCE),--force,)
SRC_FLAG   := $(if $(SRC),--source $(SRC),)
export NO_ALBUMENTATIONS_UPDATE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help install demo test test-fast data folds train predict config bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: EXP=$(EXP) COMP=$(COMP) ARGS='key=value ...' SRC=<folder> FORCE=1"

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install podium with pinned dependencies

demo: $(STAMP) ## install, then the whole job on the embedded demo: data, folds, train, TTA predict, submission
	$(PODIUM) run --config configs/demo.yaml $(ARGS)

test: $(STAMP) ## install, then run every test (slow ones included)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests without the slow end-to-end ones
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

data: $(STAMP) ## fetch, safely unpack and index COMP (SRC=<folder> to use files you already have)
	$(PODIUM) data --competition $(COMP) $(SRC_FLAG) $(FORCE_FLAG)

folds: $(STAMP) ## write the deterministic validation split of EXP
	$(PODIUM) folds --config $(EXP) $(FORCE_FLAG) $(ARGS)

train: $(STAMP) ## train EXP's folds (resumes an interrupted run; FORCE=1 retrains)
	$(PODIUM) train --config $(EXP) $(FORCE_FLAG) $(ARGS)

predict: $(STAMP) ## TTA x folds on the test set and a validated submission CSV
	$(PODIUM) predict --config $(EXP) $(ARGS)

config: $(STAMP) ## print EXP resolved with ARGS
	$(PODIUM) config --config $(EXP) $(ARGS)

bench: $(STAMP) ## input pipeline benchmark on the demo, written to benchmarks/results/
	$(BIN)/python benchmarks/bench_pipeline.py

clean: ## remove runs/ and the demo's data (keeps .venv and submissions/)
	rm -rf runs data/demo data/raw/demo
