#!/usr/bin/env bash
# Three different CIFAR-10 runs on this machine's CPU, their honest blend, and pseudo-labels from the best run.
#   bash benchmarks/blend_cifar10.sh <folder with the JPEG package: train.zip, test.zip, sample_submission.csv>
# Two folds of the package's train part (25,000 + 25,000): every train image is scored out of fold, the
# test labels are withheld as on Kaggle. Writes benchmarks/results/blend-cifar10.md (the commands' output:
# runs/blend-cifar10.log; the runs stay in runs/ for `make report`). EPOCHS=<n> (default 6) per run;
# RESULTS=<folder>: where blend-cifar10.md goes instead; WORK=<folder>: where data/, runs/ and submissions/ go
# instead of the repository's own.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: bash benchmarks/blend_cifar10.sh <cifar10 package folder>}
PODIUM=${PODIUM:-.venv/bin/podium}
PY=${PY:-.venv/bin/python}
CONFIG=configs/cifar10.yaml
RESULTS=${RESULTS:-benchmarks/results}
OUT=$RESULTS/blend-cifar10.md
COMMON="n_folds=2 val_split=0 folds=[0,1] epochs=${EPOCHS:-6} early_stopping_patience=100 verbose=0"
DATA=data RUNS=runs
if [ -n "${WORK:-}" ]; then  # data_dir, runs_dir, submissions_dir are never part of a run id
  DATA=$WORK/data RUNS=$WORK/runs COMMON="$COMMON data_dir=$DATA runs_dir=$RUNS submissions_dir=$WORK/submissions"
fi
LOG=$RUNS/blend-cifar10.log
export NO_ALBUMENTATIONS_UPDATE=1 TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$RUNS" "$RESULTS" && : > "$LOG"

# three runs that differ in what a user would vary: optimizer and schedule, augmentation, label smoothing
RUN_A="name=blend-a seed=1 optimizer=adam lr=0.002 schedule=cosine augment=[flip,crop]"
RUN_B="name=blend-b seed=2 optimizer=adamw lr=0.003 weight_decay=0.0001 schedule=onecycle warmup_epochs=1 augment=[flip] label_smoothing=0.1"
RUN_C="name=blend-c seed=3 optimizer=sgd lr=0.05 schedule=onecycle warmup_epochs=1 augment=[flip,crop] dropout=0.3 label_smoothing=0.1"

run_id() { "$PY" -c "import sys; from podium.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).run_id)" "$CONFIG" "$@"; }
timed() {  # the seconds a command took; its output goes to the log, and a failure stops the benchmark
  local started=$SECONDS
  "$@" >> "$LOG" 2>&1 || { echo "failed: $*" >&2; grep -v "^WARNING: All log\|^I0000" "$LOG" | tail -5 >&2; return 1; }
  echo $((SECONDS - started))
}

"$PODIUM" data --competition cifar10 --source "$SRC" --data-dir "$DATA" >> "$LOG" 2>&1
# shellcheck disable=SC2086
"$PODIUM" folds --config "$CONFIG" $COMMON >> "$LOG" 2>&1

declare -A SECS IDS
for arm in A B C; do
  var="RUN_$arm"
  # shellcheck disable=SC2086
  IDS[$arm]=$(run_id $COMMON ${!var})
  # shellcheck disable=SC2086
  SECS[$arm]=$(timed "$PODIUM" run --config "$CONFIG" $COMMON ${!var})
done
blend_secs=$(timed "$PODIUM" blend --runs "${IDS[A]}" "${IDS[B]}" "${IDS[C]}" --name abc --runs-dir "$RUNS")

best=$("$PY" - "$RUNS" "${IDS[A]}" "${IDS[B]}" "${IDS[C]}" <<'EOF'
import json, sys
scores = {r: json.load(open(f"{sys.argv[1]}/{r}/metrics.json"))["cv_mean"] for r in sys.argv[2:]}
print(max(scores, key=scores.get))
EOF
)
for arm in A B C; do [[ ${IDS[$arm]} == "$best" ]] && best_arm=$arm; done
var="RUN_$best_arm"
# the best run again, with its confident test predictions as pseudo-labels (weight 0.5), against itself without
PSEUDO="pseudo_run=$best pseudo_threshold=${PSEUDO_THRESHOLD:-0.9} pseudo_weight=0.5"
# shellcheck disable=SC2086
IDS[P]=$(run_id $COMMON ${!var} name=blend-pseudo $PSEUDO)
# shellcheck disable=SC2086
SECS[P]=$(timed "$PODIUM" run --config "$CONFIG" $COMMON ${!var} name=blend-pseudo $PSEUDO)
others=(); for arm in A B C; do [[ $arm != "$best_arm" ]] && others+=("${IDS[$arm]}"); done
pseudo_blend_secs=$(timed "$PODIUM" blend --runs "${IDS[P]}" "${others[@]}" --name abc-pseudo --runs-dir "$RUNS")

"$PY" - "$RUNS" "$OUT" "$CONFIG" "$COMMON" "$blend_secs" "$pseudo_blend_secs" \
  "A:${IDS[A]}:${SECS[A]}:$RUN_A" "B:${IDS[B]}:${SECS[B]}:$RUN_B" "C:${IDS[C]}:${SECS[C]}:$RUN_C" \
  "P:${IDS[P]}:${SECS[P]}:${!var} name=blend-pseudo $PSEUDO" <<'EOF'
import glob, json, os, sys
runs, out, config, common, blend_secs, pseudo_blend_secs, *arms = sys.argv[1:]
def metrics(run): return json.load(open(f"{runs}/{run}/metrics.json"))
def blend(name):
    (path,) = glob.glob(f"{runs}/blend-{name}-[0-9a-f]*[0-9a-f]/metrics.json")
    return os.path.basename(os.path.dirname(path)), json.load(open(path))
lines = ["# Blends and pseudo-labels on CIFAR-10, 2 CPU cores", "",
         f"`bash benchmarks/blend_cifar10.sh <package>`: `{config}` with `{common}`; two folds of the package's",
         "50,000 train images (every one scored out of fold); the test labels are withheld. Accuracy.", "",
         "| arm | run | overrides | CV (mean ± sd over 2 folds) | CV with TTA | wall s (2 folds, TTA predict) |",
         "|---|---|---|---:|---:|---:|"]
for arm in arms:
    key, run, secs, overrides = arm.split(":", 3)
    m = metrics(run)
    lines.append(f"| {key} | `{run}` | `{overrides}` | {m['cv_mean']:.4f} ± {m['cv_std']:.4f} | "
                 f"{m.get('cv_tta_mean', float('nan')):.4f} | {secs} |")
for name, secs in (("abc", blend_secs), ("abc-pseudo", pseudo_blend_secs)):
    run, m = blend(name)
    own = ", ".join(f"{r}: {v['mean']:.4f}" for r, v in m["run_oof_cv"].items())
    lines += ["", f"**Blend `{run}`** ({secs} s): honest CV {m['cv_mean']:.4f} ± {m['cv_std']:.4f}, "
              f"in-sample {m['in_sample_cv_mean']:.4f}; final weights {m.get('weights')}; runs' own OOF CV: {own}"]
p = metrics(arms[-1].split(":")[1])
lines += ["", f"Pseudo-labels (arm P): {json.dumps(p.get('pseudo_labels'))}"]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
