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
TEST_WORKERS ?= 2

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
	$(BIN)/pip install --quiet -c requirements.lock -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install podium with pinned dependencies

demo: $(STAMP) ## install, then the whole job on the embedded demo: data, folds, train, TTA predict, submission
	$(PODIUM) run --config configs/demo.yaml $(ARGS)

test: $(STAMP) ## install, then run every test (slow ones included), TEST_WORKERS=2 processes side by side
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests without the slow end-to-end ones
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

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

# make bench: every benchmark that needs nothing but this repository (the embedded demo, generated data) and
# rewrites its own benchmarks/results/<name>.{json,md}. Not here: gpu_cifar10.sh (a GPU and the CIFAR-10
# package), cpu_cifar10.sh, blend_cifar10.sh, transfer_cifar10.py (the CIFAR-10 package; tens of minutes to
# hours), tta_views.py (a finished run), cpu_nets.py (appends a dated row per call: run it when choosing a CPU
# recipe). Every benchmarks/*.py also runs with --smoke in the tests (tests/test_benchmarks.py).
bench: $(STAMP) ## every self-contained benchmark (demo / generated data), written to benchmarks/results/
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_training.py && KERAS_BACKEND=jax $(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_epoch_metric.py
	$(BIN)/python benchmarks/bench_detection.py
	$(BIN)/python benchmarks/bench_stream.py
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_pixels.py
	$(BIN)/python benchmarks/bench_duplicates.py
	$(BIN)/python benchmarks/bench_tiles.py

clean: ## remove runs/ and the demo's data (keeps .venv and submissions/)
	rm -rf runs data/demo data/raw/demo

# ---- Kaggle: submit and kernels (issue 3) ------------------------------------------------------------
RUN    ?=
KERNEL ?=
KERNEL_FLAG := $(if $(KERNEL),--kernel $(KERNEL),)
.PHONY: submit kernel push status output rehearse

submit: $(STAMP) ## validate RUN=<run-id> (or EXP's run), submit once, log it, wait for the public score
	$(PODIUM) submit $(if $(RUN),--run $(RUN),--config $(EXP)) $(KERNEL_FLAG) $(ARGS)

kernel: $(STAMP) ## render kernels/<slug>/ for EXP (KERNEL=<kernel.yaml>: accelerator, internet, ...)
	$(PODIUM) kernel --config $(EXP) $(KERNEL_FLAG) $(ARGS)

push: $(STAMP) ## push EXP's rendered kernel to Kaggle (starts a run on Kaggle's GPU/TPU)
	$(PODIUM) push --config $(EXP) $(KERNEL_FLAG) $(ARGS)

status: $(STAMP) ## wait for EXP's pushed kernel run, with backoff, and show its final state
	$(PODIUM) status --config $(EXP) $(KERNEL_FLAG) $(ARGS)

output: $(STAMP) ## download the finished kernel run's outputs into runs/<slug>-v<version>/
	$(PODIUM) output --config $(EXP) $(KERNEL_FLAG) $(ARGS)

LABELS ?=
rehearse: $(STAMP) ## run EXP's rendered inference kernel here as Kaggle would: offline, renamed test ids (LABELS=<csv>: score it)
	$(PODIUM) rehearse --config $(EXP) $(KERNEL_FLAG) $(if $(LABELS),--labels $(LABELS),) $(ARGS)

# ---- search, results, lr-find, augs (issue 4) ---------------------------------------------------
SPACE ?= configs/search/demo-space.yaml
.PHONY: search results lr-find augs

search: $(STAMP) ## run (or resume) the optuna search SPACE, then print its table
	$(PODIUM) search --space $(SPACE) $(ARGS)

results: $(STAMP) ## SPACE's ranked table (mean ± std over seeds), plots and best config YAML
	$(PODIUM) results --space $(SPACE) $(ARGS)

lr-find: $(STAMP) ## LR range test of EXP: loss vs learning rate plot and a suggested start value
	$(PODIUM) lr-find --config $(EXP) $(ARGS)

augs: $(STAMP) ## one batch of EXP through each of its augmentation recipes (PNG) and their cost
	$(PODIUM) augs --config $(EXP) $(ARGS)
# ---- end of the search block ---------------------------------------------------------------------

# ---- tasks: segmentation / localization data and data pruning (issue 6) ---------------------------
PRUNE_N ?= 1000
PRUNE_SEEDS ?=
.PHONY: prune synth demo-tasks

demo-tasks: $(STAMP) ## segmentation (Airbus RLE, several classes), box localization and detection end to end on generated competitions
	$(PODIUM) run --config configs/shapes-segmentation.yaml $(ARGS)
	$(PODIUM) run --config configs/shapes-multiclass.yaml $(ARGS)
	$(PODIUM) run --config configs/shapes-localization.yaml $(ARGS)
	$(PODIUM) run --config configs/shapes-detection.yaml $(ARGS)

prune: $(STAMP) ## data pruning on generated shapes: kept out of PRUNE_N, kept-only vs all on a fresh set (PRUNE_SEEDS=7,8,9: repeats)
	$(PODIUM) prune --config $(EXP) --n $(PRUNE_N) $(if $(PRUNE_SEEDS),--seeds $(PRUNE_SEEDS)) $(ARGS)

synth: $(STAMP) ## write the ellipse-and-rectangle images, Airbus-style RLE rows and boxes to data/shapes
	$(PODIUM) synth $(ARGS)
# ---- end of the tasks block ----------------------------------------------------------------------

# ---- data quality: duplicates, leak audit, data report (issue 5) -----------------------------------
# COMP given on the command line (make dups COMP=cifar10) overrides EXP's competition.
COMP_FLAG := $(if $(filter command line environment,$(origin COMP)),--competition $(COMP),)
OUT ?=
.PHONY: dups audit eda spec

dups: $(STAMP) ## group exact + near-duplicate images into the index (then `make folds FORCE=1`); ARGS='--mirrored'
	$(PODIUM) dups --config $(EXP) $(COMP_FLAG) $(FORCE_FLAG) $(ARGS)

audit: $(STAMP) ## fail loudly if EXP's saved split has copies across folds; PNG gallery of the pairs
	$(PODIUM) audit --config $(EXP) $(COMP_FLAG) $(ARGS)

eda: $(STAMP) ## data report: class counts, sizes, channel stats, odd files, duplicates, samples per class
	$(PODIUM) eda --config $(EXP) $(COMP_FLAG) $(ARGS)
spec: $(STAMP) ## draft a competition spec from SRC=<folder of downloaded files> [SLUG=<kaggle slug>] [OUT=<spec.yaml>], then check it
	$(PODIUM) spec $(SRC_FLAG) $(if $(OUT),--out $(OUT),) $(if $(SLUG),--slug $(SLUG),) $(FORCE_FLAG) $(ARGS)
# ---- end of the data-quality block -----------------------------------------------------------------

# ---- blends and the report (issue 14) -----------------------------------------------------------
RUNS   ?=
BLEND  ?=
BLEND_METHOD ?=
BLEND_NAME   ?=
.PHONY: blend report

blend: $(STAMP) ## blend RUNS="<run-id> <run-id> ..." (or BLEND=<blend.yaml>) of one split: honest CV, weights, submission; BLEND_METHOD=weights|mean|rank BLEND_NAME=
	$(PODIUM) blend $(if $(RUNS),--runs "$(RUNS)",) $(if $(BLEND),--blend $(BLEND),) $(if $(BLEND_METHOD),--method $(BLEND_METHOD),) $(if $(BLEND_NAME),--name $(BLEND_NAME),)

report: $(STAMP) ## one static HTML page over runs/ and submissions/ (runs/report/index.html): runs, blends, searches, CV vs public
	$(PODIUM) report
# ---- end of the blends-and-report block ----------------------------------------------------------
