#!/usr/bin/env bash
# The CPU recipe timed as a user runs it, from scratch: the uint8 cache rebuilt, training with the held-out
# score, then the test submission; and which TTA views pay off on the held-out part.
#   bash benchmarks/cpu_cifar10.sh <folder with the JPEG package: train.zip, test.zip, sample_submission.csv> [key=value ...]
# key=value overrides the recipe (configs/cifar10-cpu.yaml): the candidates of docs/speed.md are overrides,
# e.g. backbone=airbench_s epochs=16. Appends one row to benchmarks/results/cpu-cifar10.md.
# RESULTS=<folder>: where cpu-cifar10.md and the TTA table go instead; WORK=<folder>: where data/, runs/ and
# submissions/ go instead of the repository's own (tests/test_benchmarks.py runs it so on a tiny package).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: bash benchmarks/cpu_cifar10.sh <cifar10 package folder> [key=value ...]}
shift
PODIUM=${PODIUM:-.venv/bin/podium}
PY=${PY:-.venv/bin/python}
CONFIG=configs/cifar10-cpu.yaml
RESULTS=${RESULTS:-benchmarks/results}
DATA=data RUNS=runs PLACE=()
if [ -n "${WORK:-}" ]; then  # data_dir, runs_dir, submissions_dir are never part of a run id
  DATA=$WORK/data RUNS=$WORK/runs PLACE=(data_dir="$DATA" runs_dir="$RUNS" submissions_dir="$WORK/submissions")
fi
OUT=$RESULTS/cpu-cifar10.md
LOG=$RUNS/cpu-cifar10.log
export NO_ALBUMENTATIONS_UPDATE=1 TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$RUNS" "$RESULTS" && : > "$LOG"
trap 'echo "failed; the end of $LOG:" >&2; grep -v "^WARNING: All log\|^I0000" "$LOG" | tail -5 >&2' ERR

"$PODIUM" data --competition cifar10 --source "$SRC" --data-dir "$DATA" >> "$LOG" 2>&1
rm -rf "$DATA/cifar10/cache"  # building the cache is part of the budget
RUN=$("$PY" -c "import sys; from podium.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).run_id)" "$CONFIG" "${PLACE[@]}" "$@")
started=$SECONDS
"$PODIUM" train --config "$CONFIG" --force "${PLACE[@]}" "$@" >> "$LOG" 2>&1
trained=$SECONDS
"$PODIUM" predict --config "$CONFIG" "${PLACE[@]}" "$@" >> "$LOG" 2>&1
predicted=$SECONDS
"$PY" benchmarks/tta_views.py --config "$CONFIG" --results "$RESULTS" "${PLACE[@]}" "$@" >> "$LOG" 2>&1

[ -f "$OUT" ] || cat > "$OUT" <<'HEAD'
# CIFAR-10 on this machine's CPU (configs/cifar10-cpu.yaml and candidates as overrides)

`bash benchmarks/cpu_cifar10.sh <package> [key=value ...]`: cache rebuilt, `podium train` (45,000 train /
5,000 held out) then `podium predict` (10,000 test images, the config's TTA). Held-out accuracy of the best
checkpoint, plain and with the config's TTA; wall seconds as measured by the script.

| date | overrides | backbone | epochs | s/epoch | held-out | with TTA | train s (cache incl.) | predict s | total min |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|
HEAD
"$PY" - "$RUNS/$RUN" "$((trained - started))" "$((predicted - trained))" "$*" >> "$OUT" <<'PY'
import json, sys, time
run, train_s, predict_s, overrides = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
m = json.load(open(f"{run}/metrics.json"))
fold = m["folds"][0]
print(f"| {time.strftime('%Y-%m-%d')} | {overrides or '-'} | {m['backbone']} | {fold['epochs_run']} | "
      f"{fold['seconds_per_epoch']:.0f} | {fold['val_score']:.4f} | {fold['val_score_tta']:.4f} | {train_s} | "
      f"{predict_s} | {(train_s + predict_s) / 60:.1f} |")
PY
tail -1 "$OUT"
