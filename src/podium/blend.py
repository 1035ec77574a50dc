"""`make blend`: several finished runs of one competition and one split, averaged into one submission.

Blend weights are fitted on the runs' out-of-fold (OOF) predictions, so the rows they are scored on
must not be the rows they were fitted on: the honest blended CV fits the weights on every fold but k
and scores fold k with them (mean +/- sd over folds), exactly like a run's own CV. The in-sample figure
(weights fitted on all OOF rows, scored on the same rows) is reported beside it only to show how much
it flatters; the final weights (fitted on all OOF rows) are the ones applied to the test predictions.

Which metric: the runs' own (each run's metrics.json where it names a registry metric, else its config's /
its competition spec's: podium.scoring.run_metric). Runs scored by different metrics are refused, naming
each run's metric. Every CV the blend reports (honest, in-sample, each run alone) is in that metric, with
its direction. The weights are fitted on the metric itself where it is a smooth function of the weights
(log loss, rmse, ROC AUC, dice, box IoU), else on its smooth proxy (`Metric.proxy`: log loss for accuracy,
macro F1, F-beta / micro F1 and MAP@k; rmse of the expected grade for QWK; dice for airbus_f2): a step
function on a grid fits the noise of a few rows. metrics.json's `fitted_on` and the printed summary say
which.

Methods: `weights` (a non-negative weight per run, summing to one, chosen on a simplex grid to optimise the
fitted metric; ties broken by the weights nearest equal), `mean` (equal weights), `rank` (class
probabilities only: each class column replaced by its rank among the rows, scaled to [0, 1], then averaged:
what matters for ranking metrics).

How each task is averaged (always the weighted mean of the runs' TTA-averaged outputs):
classification: the class probabilities (turned into what the metric reads by podium.scoring.forms);
multilabel: each class's sigmoid probability; a label-set metric (fbeta, micro_f1) thresholds them at
per-class thresholds chosen for the metric on the fitting rows only (fold k: on the other folds; the
final ones on every blended OOF row, saved as the blend's thresholds.json, which its writer reads);
segmentation: the mask probabilities pixel by pixel, thresholded afterwards at mask_threshold;
localization: the class probabilities as in classification, and each box coordinate (x1, y1, x2, y2) as
the weighted mean of the runs' coordinates; regression: the number per image (oof.parquet's TTA prediction,
in the target's units, scored against its target; QWK graded at cut points fitted on the fit rows only; the
blend's folder gets the runs' common target_scale.json and, for QWK, qwk_cuts.json, which its writer reads).
Segmentation and localization read the raw OOF
outputs that training saves beside oof.parquet (tasks.OOF_OUTPUTS); runs trained before that are refused.
A log-loss blend is temperature-scaled (podium.scoring.calibration) on its honest blended OOF rows:
calibration.json in the blend's folder, applied to its test probabilities, before/after in metrics.json.

The blend is recorded like a run: runs/<blend-id>/config.yaml (the first run's config under the name
blend-<name>, so `make submit RUN=<blend-id>` finds it), blend.yaml (runs, method, weights) and
metrics.json (cv_mean, cv_std, ...); its submission is submissions/<slug>/<blend-id>.csv, written and
validated by the task's own writer (podium.runners.predict.write_task_submission).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium import artefacts
from podium.config import ExperimentConfig, load_config, save_config
from podium.data.competitions import load_competition
from podium.data.dataset import load_labeled_data, test_rows
from podium.data.index import class_names, load_index
from podium.errors import PodiumError
from podium.paths import check_name
from podium.io import atomic_path, read_yaml_mapping, write_csv, write_json, write_yaml
from podium.progress import progress as progress_bar
from podium.scoring import calibration
from podium.scoring.forms import from_class_probabilities, from_label_probabilities, positive_index
from podium.scoring.registry import Metric, resolve_metric
from podium.scoring.run_metric import recorded_metric
from podium.submission.validate import read_competition_sample
from podium.tasks import OOF_OUTPUTS, get_task
from podium.tasks.base import TestPredictions
from podium.tasks.multilabel import THRESHOLDS, choose_thresholds, multi_hot, threshold_record
from podium.runners.predict import write_task_submission
from podium.workflow import _class_prior

METHODS = ("weights", "mean", "rank")
GRID_POINTS = 1500  # the most simplex points tried per fit (the grid gets coarser with more runs)
EPS = 1e-7


# ------------------------------------------------------------------------------------------ the runs
@dataclass
class BlendRun:
    """One finished run as the blend sees it: its saved config, record of data and OOF predictions."""

    run_id: str
    cfg: ExperimentConfig
    data: dict  # runs/<id>/data.json: the split file and its fingerprint
    oof: pd.DataFrame  # every trained fold's oof.parquet, sorted by id
    classes: list[str]  # the prob_<class> columns' order (classification)
    outputs: np.ndarray | None = None  # the raw OOF outputs row for row with `oof` (tasks.OOF_OUTPUTS)
    oof_values: tuple[np.ndarray, np.ndarray] | None = None  # (values, truth) the task reads from oof (Task.blend_oof)
    notes: list[str] = field(default_factory=list)  # what reading its artefacts found worth saying

    @property
    def class_probabilities(self) -> bool:
        """What is averaged is oof.parquet's prob_<class> columns (the task saves no raw outputs,
        Task.saved_outputs_dtype): scored against the labels, and ranks make sense."""
        return self.outputs is None and self.oof_values is None

    @property
    def probs(self) -> np.ndarray:
        """What is averaged: class probabilities, the saved masks / class probabilities + box, or the task's
        own oof.parquet values (regression: the number per image, in the target's units)."""
        if self.oof_values is not None:
            return self.oof_values[0]
        if not self.class_probabilities:
            return np.asarray(self.outputs, dtype="float32")
        return self.oof[[f"prob_{c}" for c in self.classes]].to_numpy(dtype="float64")


@dataclass
class BlendSpec:
    runs: list[str]
    method: str = "weights"
    name: str = ""  # empty: a hash of the runs and the method

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        payload = json.dumps({"runs": sorted(self.runs), "method": self.method}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:8]


def load_blend_spec(path: str | Path | None = None, runs: list[str] | None = None, method: str | None = None,
                    name: str | None = None) -> BlendSpec:
    """RUNS on the command line, or a blend YAML (runs, method, name); the command line wins per key."""
    values: dict = {}
    if path:
        values = read_yaml_mapping(path, "Blend file", "runs: [<run-id>, <run-id>]\nmethod: weights",
                                   "write runs:, method: and name: on their own lines")
        unknown = sorted(set(values) - {"runs", "method", "name"})
        if unknown:
            raise PodiumError(f"Blend file {path} has unknown keys.", expected="runs, method, name",
                              received=", ".join(unknown), fix="remove or rename them")
    run_ids = list(runs) if runs else values.get("runs") or []
    if isinstance(run_ids, str):
        run_ids = run_ids.split()
    spec = BlendSpec(runs=[str(r) for r in run_ids], method=str(method or values.get("method") or "weights"),
                     name=str(name or values.get("name") or ""))
    if len(spec.runs) < 2 or len(set(spec.runs)) != len(spec.runs):
        raise PodiumError("A blend needs at least two different runs.", expected='RUNS="<run-id> <run-id> ..."',
                          received=repr(spec.runs), fix="name two or more run ids from runs/ (each once)")
    for run_id in spec.runs:
        check_name(run_id, "runs", "<run-id from runs/>")
    check_name(spec.label, "name", "b0-effnet")
    if spec.method not in METHODS:
        raise PodiumError(f"Unknown blend method {spec.method!r}.", expected=" | ".join(METHODS),
                          received=repr(spec.method), fix="method=weights (fitted), mean or rank")
    if not spec.label.replace("-", "").replace("_", "").isalnum():
        raise PodiumError("A blend name may hold letters, digits, '-' and '_' only (it names files).",
                          expected="e.g. name=b0-effnet", received=repr(spec.name), fix="choose another name")
    return spec


def load_run(run_id: str, runs_dir: str | Path = "runs") -> BlendRun:
    """A finished run: config.yaml, data.json and every trained fold's oof.parquet."""
    run_dir = Path(runs_dir) / run_id
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise PodiumError(f"Run '{run_id}' has no saved config.", expected=str(saved), received="no such file",
                          fix="check the run id against the folders in runs/ (make train writes them)")
    if (run_dir / "blend.yaml").is_file():
        raise PodiumError(f"'{run_id}' is a blend, which has no out-of-fold predictions of its own to refit.",
                          expected="trained runs (folders with fold-<k>/oof.parquet)", received=f"blend {run_id}",
                          fix=f"blend its runs together instead (listed in {run_dir / 'blend.yaml'})")
    cfg = load_config(saved)
    saves_outputs = get_task(cfg.task).saved_outputs_dtype is not None  # else oof.parquet holds them
    names = ["oof.parquet"] + ([OOF_OUTPUTS] if saves_outputs else [])
    missing = [f"fold-{k}/{name}" for k in cfg.folds for name in names
               if not (run_dir / f"fold-{k}" / name).is_file()]
    if missing:
        older = any(m.endswith(OOF_OUTPUTS) for m in missing) and not any(m.endswith("oof.parquet") for m in missing)
        raise PodiumError(f"Run '{run_id}' has folds without the out-of-fold predictions a blend averages.",
                          expected=", ".join(f"fold-{k}/{n}" for k in cfg.folds for n in names),
                          received=f"missing {', '.join(missing)}",
                          fix="retrain it (make train FORCE=1): it was trained before podium saved the raw "
                              f"{cfg.task} outputs" if older else "finish its training: make train")
    images = artefacts.train_images(_index_of(cfg))
    remake = f"make train FORCE=1 with run {run_id}'s config ({saved})"
    checked = [artefacts.read(run_dir / f"fold-{k}" / name, what=f"run {run_id}'s fold {k} {name}", remake=remake,
                              images=images, legacy_ok=True) for k in cfg.folds for name in names]
    notes = [n for a in checked for n in a.notes]
    oof = pd.concat([a.values for a in checked if a.path.name == "oof.parquet"], ignore_index=True)
    oof["id"] = oof["id"].astype(str)
    order = np.argsort(oof["id"].to_numpy(), kind="stable")
    oof = oof.iloc[order].reset_index(drop=True)
    outputs = None
    if saves_outputs:
        outputs = np.concatenate([a.values for a in checked if a.path.name == OOF_OUTPUTS])[order]
    classes = [c[len("prob_"):] for c in oof.columns if c.startswith("prob_")]
    record = run_dir / "data.json"
    data = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    return BlendRun(run_id, cfg, data, oof, classes, outputs, get_task(cfg.task).blend_oof(oof), notes)


def check_compatible(runs: list[BlendRun]) -> None:
    """One competition, one task, one split (file and content), the same classes and validation ids per fold."""
    first = runs[0]

    def refuse(what: str, mine, theirs, run: BlendRun, fix: str) -> None:
        raise PodiumError(f"Runs '{first.run_id}' and '{run.run_id}' differ in {what}, so they cannot be blended.",
                          expected=f"{what} of {first.run_id}: {mine}", received=f"{what} of {run.run_id}: {theirs}",
                          fix=fix)

    retrain = "retrain it with the same split (make folds, then make train with the same n_folds/split_seed)"
    for run in runs[1:]:
        if run.cfg.competition != first.cfg.competition:
            refuse("competition", first.cfg.competition, run.cfg.competition, run, "blend runs of one competition")
        if run.cfg.task != first.cfg.task:
            refuse("task", first.cfg.task, run.cfg.task, run, "blend runs of one task")
        for key, what in (("split", "split file"), ("split_fingerprint", "split content")):
            if first.data.get(key) != run.data.get(key):
                refuse(what, first.data.get(key, "not recorded"), run.data.get(key, "not recorded"), run, retrain)
        if sorted(set(run.oof["fold"])) != sorted(set(first.oof["fold"])):
            refuse("trained folds", sorted(set(first.oof["fold"])), sorted(set(run.oof["fold"])), run,
                   "train the same folds=[...] in every run")
        if run.classes != first.classes:
            refuse("classes", first.classes, run.classes, run, "blend runs trained on the same labels")
        for fold in sorted(set(first.oof["fold"])):
            mine = set(first.oof.loc[first.oof["fold"] == fold, "id"])
            theirs = set(run.oof.loc[run.oof["fold"] == fold, "id"])
            if mine != theirs:
                refuse(f"validation ids of fold {fold}", f"{len(mine)} ids",
                       f"{len(theirs)} ids, {len(mine ^ theirs)} not shared", run, retrain)
    for run in runs[1:]:  # same ids per fold, both sorted by id: rows line up; labels must too
        if run.probs.shape[1:] != first.probs.shape[1:]:
            refuse("output shape (image size, classes)", first.probs.shape[1:], run.probs.shape[1:], run,
                   "blend runs trained at one image_size on the same labels")
        if "label" in first.oof and not np.array_equal(run.oof["label"].to_numpy(), first.oof["label"].to_numpy()):
            refuse("OOF labels", "the labels of its index", "other labels for the same ids", run,
                   "retrain both runs on the current data (make train FORCE=1)")
        if first.oof_values is not None and not np.array_equal(run.oof_values[1], first.oof_values[1]):
            refuse("OOF targets", "the targets of its labels CSV", "other targets for the same ids", run,
                   "retrain both runs on the current data (make train FORCE=1)")


# ------------------------------------------------------------------------------------ the averaging
def rank_scaled(probs: np.ndarray) -> np.ndarray:
    """Each column's rank among the rows, scaled to [0, 1] (ties share their mean rank)."""
    ranks = pd.DataFrame(probs).rank(axis=0, method="average").to_numpy(dtype="float64")
    return (ranks - 1) / max(1, len(probs) - 1)


def combine(stack: np.ndarray, weights: np.ndarray, method: str = "weights") -> np.ndarray:
    """(runs, rows, classes) -> (rows, classes): the weighted mean, of ranks for `rank`."""
    if method == "rank":
        stack = np.stack([rank_scaled(p) for p in stack])
    return np.tensordot(np.asarray(weights, dtype="float64"), stack, axes=1)


def simplex_grid(n_runs: int, max_points: int = GRID_POINTS) -> np.ndarray:
    """Every weight vector with steps of 1/m summing to one, m as fine as `max_points` allows (<= 20)."""
    steps = next(m for m in range(20, 0, -1) if math.comb(m + n_runs - 1, n_runs - 1) <= max_points)
    points = [np.array(c, dtype="float64") for c in _compositions(steps, n_runs)]
    return np.stack(points) / steps


def _compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


@dataclass(frozen=True)
class Objective:
    """What a blend is scored by (the runs' metric, direction-aware) and what its weights are fitted on: the
    metric itself, or its smooth proxy (Metric.proxy: log loss for accuracy, F1, F-beta and MAP@k, rmse for
    QWK, dice for airbus_f2) where the metric is a step function of the weights and a grid would fit noise.

    `score(values, truth, fit_values, fit_truth)` reads the blended outputs in the task's form (class
    probabilities; sigmoid per label; masks; class probabilities + box) and turns them into what the metric
    reads (podium.scoring.forms); a label-set metric thresholds at per-class thresholds chosen on the fit
    rows (never on the scored rows, unless they are the same rows: the in-sample figure)."""

    metric: Metric
    task: str
    positive: int = 1  # the class a `probability` metric reads (classification)
    k: int = 0  # labels per row of a ranking metric

    @property
    def fitted(self) -> Metric:
        return self.metric.proxy

    @property
    def on_proxy(self) -> bool:
        return self.fitted.label != self.metric.label

    @property
    def fitted_on(self) -> str:
        """What metrics.json, the summary and the docs say the weights were fitted on."""
        if not self.on_proxy:
            return f"{self.metric.label} (the metric itself)"
        return f"{self.fitted.label} (smooth proxy of {self.metric.label}, a step function of the weights)"

    def score(self, values: np.ndarray, truth: np.ndarray, fit_values: np.ndarray | None = None,
              fit_truth: np.ndarray | None = None) -> float:
        """The metric on `values` (fit rows: where a label-set metric's thresholds are chosen)."""
        return _evaluate(self.metric, self, values, truth, fit_values, fit_truth)

    def fit_value(self, values: np.ndarray, truth: np.ndarray) -> float:
        """The fitted metric, signed so that higher is better (a grid search maximises it)."""
        value = _evaluate(self.fitted, self, values, truth, values, truth)
        return value if self.fitted.direction == "max" else -value


def _evaluate(metric: Metric, objective: Objective, values: np.ndarray, truth: np.ndarray,
              fit_values: np.ndarray | None, fit_truth: np.ndarray | None) -> float:
    task = objective.task
    values = np.asarray(values)
    scored = get_task(task).blend_score(metric, values, truth, fit_values, fit_truth)  # the task's own reading
    if scored is not None:
        return scored
    if task == "classification":
        if metric.reads == "numbers":  # rmse, QWK's proxy: the expected grade against the true one
            return metric(truth, _normalised(values) @ np.arange(values.shape[1]))
        probs = _normalised(values) if metric.reads in ("probability", "probabilities") else values
        return metric(*from_class_probabilities(metric, truth, probs, positive=objective.positive, k=objective.k))
    if task == "multilabel":
        if metric.name == "log_loss":  # the proxy of a label-set metric: each label's binary log loss, averaged
            return float(np.mean([metric(truth[:, c], np.clip(values[:, c], 0, 1)) for c in range(truth.shape[1])]))
        if metric.reads == "label_sets":
            # lazy: podium.tasks.multilabel is a task object; blend reaches it only here
            from podium.tasks.multilabel import choose_thresholds

            chosen = choose_thresholds(fit_truth if fit_truth is not None else truth,
                                       fit_values if fit_values is not None else values, metric)
            return metric(*from_label_probabilities(metric, truth, values, chosen))
        return metric(*from_label_probabilities(metric, truth, values))
    if task == "localization":
        return metric(truth, values[:, -4:]) if metric.reads == "boxes" else \
            metric(truth, values[:, :-4].argmax(1))
    return metric(truth, values)  # segmentation: masks


def _normalised(probs: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (a weighted mean of softmax rows already sums to one; ranks do not)."""
    probs = np.clip(np.asarray(probs, dtype="float64"), 0, None)
    return probs / np.clip(probs.sum(axis=1, keepdims=True), EPS, None)


def default_objective() -> Objective:
    return Objective(resolve_metric("accuracy"), "classification")


def fit_weights(stack: np.ndarray, truth: np.ndarray, objective: Objective | None = None) -> np.ndarray:
    """Non-negative weights summing to one: the grid point best on the fitted metric (the run's metric or its
    proxy, direction-aware), ties broken by the weights nearest equal (never by the order runs are listed)."""
    objective = objective or default_objective()
    grid = simplex_grid(len(stack))
    equal = np.full(len(stack), 1 / len(stack))
    best_key, best = None, equal
    for w in grid:
        key = (round(objective.fit_value(combine(stack, w), truth), 12), -float(np.abs(w - equal).sum()))
        if best_key is None or key > best_key:
            best_key, best = key, w
    return best


@dataclass
class BlendScores:
    method: str
    folds: list[int]
    fold_scores: list[float]  # honest: fold k scored with weights (and thresholds) fitted on the other folds
    fold_weights: list[list[float]]
    weights: list[float]  # fitted on all OOF rows: what the test predictions get
    in_sample_scores: list[float]  # fold k scored with the all-rows weights (optimistic for `weights`)
    run_scores: dict[str, list[float]]  # each run alone, per fold, on the same OOF rows
    metric: str = "accuracy"  # the metric's label: every score above is in it
    direction: str = "max"
    fitted_on: str = ""  # what the weights were fitted on (Objective.fitted_on)
    fit_scores: list[float] = field(default_factory=list)  # honest, in the fitted metric (proxy or metric)
    in_sample_fit_scores: list[float] = field(default_factory=list)

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.fold_scores))

    @property
    def in_sample_mean(self) -> float:
        return float(np.mean(self.in_sample_scores))


def blend_oof(stack: np.ndarray, truth: np.ndarray, folds: np.ndarray, run_ids: list[str], method: str,
              objective: Objective | None = None, progress: bool = False) -> BlendScores:
    """Honest blended CV: weights fitted on the other folds' rows, scored on the held-out fold.

    `stack` is (runs, rows, ...) of OOF outputs aligned by row; `folds` gives each row's fold. Rank averaging
    ranks within the scored fold's rows, as the test rows are ranked among themselves. Thresholds of a
    label-set metric are chosen on the same rows as the weights.
    """
    objective = objective or default_objective()
    equal = np.full(len(stack), 1 / len(stack))
    fold_ids = sorted(int(f) for f in np.unique(folds))
    if method == "weights" and len(fold_ids) < 2:
        raise PodiumError("Fitting blend weights honestly needs at least two folds.",
                          expected="runs with folds=[0, 1, ...] (k-fold)", received=f"fold(s) {fold_ids}",
                          fix="blend with method=mean or rank, or train more folds")
    final = fit_weights(stack, truth, objective) if method == "weights" else equal
    scores, in_sample, per_fold_weights, fit_scores, in_sample_fit = [], [], [], [], []
    runs: dict[str, list[float]] = {r: [] for r in run_ids}
    for k in progress_bar(fold_ids, desc=f"blend: fit {method} on the other folds, score each fold", unit="fold",
                          enabled=progress):
        held = folds == k
        other = ~held if (~held).any() else held
        w = fit_weights(stack[:, other], truth[other], objective) if method == "weights" else equal
        per_fold_weights.append([float(x) for x in w])
        honest, fitted_rows = combine(stack[:, held], w, method), combine(stack[:, other], w, method)
        scores.append(objective.score(honest, truth[held], fitted_rows, truth[other]))
        optimistic = combine(stack[:, held], final, method)
        in_sample.append(objective.score(optimistic, truth[held], combine(stack, final, method), truth))
        sign = 1 if objective.fitted.direction == "max" else -1
        fit_scores.append(sign * objective.fit_value(honest, truth[held]))
        in_sample_fit.append(sign * objective.fit_value(optimistic, truth[held]))
        for r, run_id in enumerate(run_ids):
            runs[run_id].append(objective.score(stack[r, held], truth[held], stack[r, other], truth[other]))
    return BlendScores(method, fold_ids, scores, per_fold_weights, [float(x) for x in final], in_sample, runs,
                       metric=objective.metric.label, direction=objective.metric.direction,
                       fitted_on=objective.fitted_on, fit_scores=fit_scores, in_sample_fit_scores=in_sample_fit)


def honest_oof(stack: np.ndarray, folds: np.ndarray, scores: BlendScores, method: str) -> np.ndarray:
    """The blended OOF rows, each fold blended with the weights fitted on the other folds."""
    out = np.zeros(stack.shape[1:], dtype="float64")
    for k, w in zip(scores.folds, scores.fold_weights):
        held = folds == k
        out[held] = combine(stack[:, held], np.asarray(w), method)
    return out


# ------------------------------------------------------------------------------------- the blend job
@dataclass
class BlendSummary:
    blend_id: str
    run_dir: Path
    submission: Path
    scores: BlendScores
    runs: list[str]
    run_cv: dict[str, tuple[float, float]]  # each run's own CV (metrics.json cv_tta_mean, cv_tta_std)
    seconds: float
    notes: list[str] = field(default_factory=list)


def blend_config(first: ExperimentConfig, spec: BlendSpec) -> ExperimentConfig:
    """The config recorded for the blend: the first run's, named blend-<name>; its run_id is the blend id."""
    return dataclasses.replace(first, name=f"blend-{spec.label}")


def load_test_predictions(run: BlendRun, runs_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """runs/<id>/test_ids.csv and test_predictions.npy, as `make predict` wrote them, checked by the one
    reader of hand-over artefacts (podium.artefacts): whole, finite, of the index's test images now, of
    finished folds, of the run's task's kind."""
    run_dir = Path(runs_dir) / run.run_id
    values, ids = run_dir / "test_predictions.npy", run_dir / "test_ids.csv"
    if not values.is_file() or not ids.is_file():
        raise PodiumError(f"Run '{run.run_id}' has no saved test predictions.",
                          expected=f"{values} and {ids}", received="missing",
                          fix=f"make predict EXP=<its config> (or RUN's config: {run_dir / 'config.yaml'})")
    checked = artefacts.read(values, what=f"run {run.run_id}'s test predictions",
                             remake=f"make predict with run {run.run_id}'s config ({run_dir / 'config.yaml'})",
                             kinds=(artefacts.TASK_KINDS.get(run.cfg.task, "numbers"),),
                             images=artefacts.test_images(_index_of(run.cfg)))
    rows = pd.read_csv(ids, dtype={"id": str}, keep_default_na=False)
    rows["ok"] = rows["ok"].astype(str).str.lower().isin(("true", "1"))
    return rows, np.asarray(checked.values)


def _index_of(cfg: ExperimentConfig) -> pd.DataFrame:
    return load_index(Path(cfg.data_dir) / load_competition(cfg.competition).slug / "index.parquet")


def check_name_free(run_dir: Path, spec: BlendSpec) -> None:
    """A blend name names one blend: reused for other runs or another method it is refused, never replaced."""
    record = run_dir / "blend.yaml"
    if not record.is_file():
        if (run_dir / "config.yaml").is_file():
            raise PodiumError(f"The blend name '{spec.label}' is taken by {run_dir}, which is not a blend.",
                              expected="a name no run uses", received=str(run_dir), fix="choose another name=")
        return
    earlier = read_yaml_mapping(record, "Blend record", "runs: [...]", "")
    if sorted(map(str, earlier.get("runs") or [])) != sorted(spec.runs) or earlier.get("method") != spec.method:
        raise PodiumError(f"The blend name '{spec.label}' already names another blend ({run_dir}).",
                          expected=f"runs {earlier.get('runs')}, method {earlier.get('method')} (what it blends)",
                          received=f"runs {spec.runs}, method {spec.method}",
                          fix="give this blend another name (BLEND_NAME=...); the first blend is kept")


BLENDED_TASKS = ("classification", "multilabel", "segmentation", "localization", "regression")


def check_same_metric(runs: list[BlendRun], runs_dir: str | Path) -> Metric:
    """The one metric every run was scored by (its metrics.json, else its config's / spec's): runs scored by
    different metrics are never blended, since their CVs, weights and thresholds answer other questions."""
    found = [(run, *recorded_metric(Path(runs_dir) / run.run_id, run.cfg)) for run in runs]
    labels = {metric.label for _, metric, _ in found}
    if len(labels) > 1:
        raise PodiumError("The runs were scored by different metrics, so they cannot be blended.",
                          expected="runs scored by one metric (the competition's, or one config `metric:`)",
                          received="; ".join(f"{run.run_id}: {metric.label} (from {where})"
                                             for run, metric, where in found),
                          fix="blend runs scored by the same metric (retrain the others with it)")
    return found[0][1]


def run_objective(metric: Metric, task: str, competition, classes: list[str]) -> Objective:
    """The objective of a blend of `task` runs: the metric, the positive class and k of the competition."""
    positive = positive_index(competition.positive_class, classes) \
        if task == "classification" and (len(classes) == 2 or competition.positive_class) else 1
    k = competition.resolved_top_k if metric.reads == "ranking" else 0
    return Objective(metric, task, positive, k)


def run_blend(spec: BlendSpec, runs_dir: str | Path = "runs", progress: bool = True) -> BlendSummary:
    """Check, fit honestly, apply to the test predictions, write the validated submission and the record."""
    started = time.perf_counter()
    runs = [load_run(r, runs_dir) for r in spec.runs]
    check_compatible(runs)
    first = runs[0]
    check_name_free(Path(runs_dir) / blend_config(first.cfg, spec).run_id, spec)  # before minutes of fitting
    task = first.cfg.task
    if task not in BLENDED_TASKS:
        raise PodiumError(f"Blending {task} runs is not supported yet.", expected=f"runs of a task among: "
                          f"{', '.join(BLENDED_TASKS)}", received=f"task={task}", fix="submit the best single run")
    if spec.method == "rank" and not first.class_probabilities:
        raise PodiumError(f"Rank averaging is for class probabilities, not {task} outputs (ranks scaled to "
                          "[0, 1] are no longer masks, boxes or numbers in the target's units).",
                          expected="method=weights or mean", received=f"method=rank for task={task}",
                          fix="blend with method=weights (fitted) or mean")
    metric = check_same_metric(runs, runs_dir)
    cfg = blend_config(first.cfg, spec)
    competition = load_competition(cfg.competition)
    root = Path(cfg.data_dir) / competition.slug
    index = load_index(root / "index.parquet")
    classes = class_names(index, competition, get_task(task))
    if first.class_probabilities and classes != first.classes:
        raise PodiumError("The runs' classes are not the competition's classes now.", expected=str(classes),
                          received=str(first.classes), fix="retrain the runs on the current data")
    objective = run_objective(metric, task, competition, classes)
    stack = np.stack([r.probs for r in runs])
    truth = oof_truth(first, objective)
    folds = first.oof["fold"].to_numpy()
    scores = blend_oof(stack, truth, folds, spec.runs, spec.method, objective, progress=progress)
    blended_oof = honest_oof(stack, folds, scores, spec.method)
    final_oof = combine(stack, np.asarray(scores.weights), spec.method)
    del stack

    tests = [load_test_predictions(r, runs_dir) for r in runs]
    for run, (rows, values) in zip(runs[1:], tests[1:]):
        if rows["id"].tolist() != tests[0][0]["id"].tolist() or rows["ok"].tolist() != tests[0][0]["ok"].tolist():
            raise PodiumError(f"Runs '{first.run_id}' and '{run.run_id}' predicted different test images.",
                              expected=f"the test ids of {first.run_id} ({len(tests[0][0])})",
                              received=f"{len(rows)} ids, not the same",
                              fix="make predict both runs on the current data")
        if values.shape != tests[0][1].shape:
            raise PodiumError(f"Runs '{first.run_id}' and '{run.run_id}' saved test predictions of other shapes.",
                              expected=str(tests[0][1].shape), received=str(values.shape),
                              fix="make predict both runs again")
    blended = combine(np.stack([values for _, values in tests]), np.asarray(scores.weights),
                      spec.method).astype("float32")

    sample = read_competition_sample(root / competition.sample_submission, competition)
    rows = test_rows(index).reset_index(drop=True)  # with the sizes the mask and box writers need
    if rows["id"].astype(str).tolist() != tests[0][0]["id"].tolist():
        raise PodiumError("The runs' test predictions are not for the index's test images now.",
                          expected=f"{len(rows)} test ids of {root / 'index.parquet'}",
                          received=f"{len(tests[0][0])} ids in {first.run_id}'s test_ids.csv, not the same",
                          fix="make predict the runs again on the current data")
    run_dir = Path(runs_dir) / cfg.run_id
    extra: dict = {}
    if task == "multilabel":  # the blend's own thresholds, chosen on its OOF rows; the writer reads them
        thresholds = choose_thresholds(truth, final_oof, metric)
        extra["thresholds"] = threshold_record(classes, thresholds, metric, truth, final_oof, folds,
                                               f"{len(truth)} blended out-of-fold predictions")
        write_json(run_dir / THRESHOLDS, extra["thresholds"])
    extra.update(get_task(task).blend_files([Path(runs_dir) / r for r in spec.runs], run_dir, metric, truth,
                                            final_oof, folds))  # e.g. regression's target scale and QWK cuts
    calibrated = None
    if spec.method != "rank" and calibration.applies(metric, task) and len(scores.folds) > 1:
        # fitted on the honest blended OOF rows (fold k blended with its own weights), each fold's T on the others
        calibrated = calibration.save_calibration(run_dir, calibration.calibrate(
            metric, truth, _normalised(blended_oof), folds, classes, objective.positive))
        extra["calibration"] = calibrated.to_dict()
    predictions = TestPredictions(rows=rows, readable=rows["ok"].to_numpy(dtype=bool), values=blended)
    submission = Path(cfg.submissions_dir) / competition.slug / f"{cfg.run_id}.csv"
    write_task_submission(cfg, competition, predictions, sample, submission, classes,
                          _class_prior(index, classes, task))

    save_config(cfg, run_dir / "config.yaml")
    _save_npy(run_dir / "test_predictions.npy", blended)
    write_csv(run_dir / "test_ids.csv", rows[["id", "ok"]])
    artefacts.stamp(run_dir / "test_predictions.npy", images=artefacts.test_images(index), made_by="make blend",
                    kind="ranks" if spec.method == "rank" else artefacts.TASK_KINDS.get(task, "numbers"),
                    remake=f'make blend RUNS="{" ".join(spec.runs)}" BLEND_METHOD={spec.method} '
                           f"BLEND_NAME={spec.label}",
                    inputs=[Path(runs_dir) / r / "test_predictions.npy" for r in spec.runs],
                    folds=[{"run": r, **f} for r in spec.runs for f in _folds_used(Path(runs_dir) / r)],
                    companions=[run_dir / "test_ids.csv"])
    write_yaml(run_dir / "blend.yaml", {"runs": spec.runs, "method": spec.method, "name": spec.label,
                                        "weights": dict(zip(spec.runs, scores.weights))})
    run_cv = {r.run_id: (_metric(r, "cv_tta_mean", runs_dir), _metric(r, "cv_tta_std", runs_dir)) for r in runs}
    seconds = time.perf_counter() - started
    write_json(run_dir / "metrics.json", {
        "run_id": cfg.run_id, "kind": "blend", "competition": competition.slug, "task": cfg.task,
        "metric": metric.label, "metric_spec": metric.to_config(), "direction": metric.direction,
        "fitted_on": scores.fitted_on if spec.method == "weights" else "nothing (equal weights)",
        "method": spec.method, "runs": spec.runs,
        "weights": dict(zip(spec.runs, scores.weights)), "cv_mean": scores.cv_mean, "cv_std": scores.cv_std,
        "in_sample_cv_mean": scores.in_sample_mean,
        "folds": [{"fold": k, "score": s, "weights": w, "in_sample_score": i, "fitted_metric_score": f}
                  for k, s, w, i, f in zip(scores.folds, scores.fold_scores, scores.fold_weights,
                                           scores.in_sample_scores, scores.fit_scores)],
        "run_oof_cv": {r: {"mean": float(np.mean(v)), "std": float(np.std(v))} for r, v in scores.run_scores.items()},
        "run_cv_tta": {r: {"mean": m, "std": s} for r, (m, s) in run_cv.items()},
        "split": first.data.get("split"), "submission": str(submission), "wall_seconds": seconds, **extra,
    })
    return BlendSummary(cfg.run_id, run_dir, submission, scores, spec.runs, run_cv, seconds,
                        notes=[f"note: {n}" for r in runs for n in r.notes] +
                        ([calibrated.summary()] if calibrated is not None else []))


def _folds_used(run_dir: Path) -> list[dict]:
    record = artefacts.read_record(run_dir / "test_predictions.npy") or {}
    return list(record.get("folds", []))


def oof_truth(run: BlendRun, objective: Objective | None = None) -> np.ndarray:
    """What the OOF rows are scored against: class indices, 0/1 label rows (multi-label), or (boxes, masks)
    the index's targets by id; a localization run scored by a label metric: its class indices; a task that
    reads its truth from oof.parquet (Task.blend_oof, regression: the target), that."""
    if run.oof_values is not None:
        return run.oof_values[1]
    if run.cfg.task == "multilabel":
        return multi_hot(run.oof["label"], run.classes)
    if run.class_probabilities or (objective is not None and run.cfg.task == "localization"
                                   and objective.metric.reads == "labels" and "label" in run.oof):
        return run.oof["label"].to_numpy(dtype="int64")
    data = load_labeled_data(run.cfg, get_task(run.cfg.task), progress=False)
    position = {str(i): k for k, i in enumerate(data.ids)}
    missing = [i for i in run.oof["id"] if i not in position]
    if missing:
        raise PodiumError(f"Run '{run.run_id}' has OOF rows the index no longer has.", expected="the index's ids",
                          received=f"{len(missing)} unknown, e.g. {missing[0]!r}",
                          fix="retrain the runs on the current data (make train FORCE=1)")
    return np.asarray(data.targets[[position[i] for i in run.oof["id"]]])


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def _metric(run: BlendRun, key: str, runs_dir: str | Path) -> float:
    path = Path(runs_dir) / run.run_id / "metrics.json"
    value = json.loads(path.read_text(encoding="utf-8")).get(key) if path.is_file() else None
    return float(value) if value is not None else math.nan


def _spread(mean: float, std: float, n_folds: int) -> str:
    """'0.8624 +/- 0.0100' over several folds; one fold (a holdout) has no spread to show."""
    return f"{mean:.4f} +/- {std:.4f}" if n_folds > 1 else f"{mean:.4f} (one fold)   "


def summary_lines(summary: BlendSummary) -> list[str]:
    """What `make blend` prints: each run's CV, the honest blended CV, the in-sample figure and the weights."""
    s = summary.scores
    width = max(len(r) for r in [*summary.runs, "blend (honest)"])
    better = "higher" if s.direction == "max" else "lower"
    lines = [f"blend {summary.blend_id} ({s.method}, {len(summary.runs)} runs, folds {s.folds})",
             f"metric: {s.metric} ({better} is better)" +
             (f"; weights fitted on {s.fitted_on}" if s.method == "weights" else ""),
             f"{'':<{width}}  {'CV (OOF, TTA)':<17}  final weight"]
    for run_id, w in zip(summary.runs, s.weights):
        v = s.run_scores[run_id]
        lines.append(f"{run_id:<{width}}  {_spread(np.mean(v), np.std(v), len(v))}  {w:.3f}")
    how = "each fold scored with weights fitted on the other folds" if s.method == "weights" else \
        "equal weights: nothing fitted"
    lines.append(f"{'blend (honest)':<{width}}  {_spread(s.cv_mean, s.cv_std, len(s.folds))}  ({how})")
    if s.method == "weights":
        lines.append(f"{'in-sample':<{width}}  {s.in_sample_mean:.4f}            (weights fitted on the scored "
                     "rows: optimistic, for comparison only)")
        lines.append("per-fold weights: " + "; ".join(
            f"fold {k}: " + ", ".join(f"{x:.2f}" for x in w) for k, w in zip(s.folds, s.fold_weights)))
    lines += summary.notes
    lines += [f"submission: {summary.submission} (validated)",
              f"recorded: {summary.run_dir} (make submit RUN={summary.blend_id})"]
    return lines
