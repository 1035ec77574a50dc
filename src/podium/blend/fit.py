"""The averaging and fitting of a blend (podium.blend): weights on a simplex grid, fitted honestly on the other
folds' out-of-fold rows and scored on the held-out fold, in the runs' metric or its smooth proxy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.progress import progress as progress_bar
from podium.scoring.registry import Metric, resolve_metric
from podium.tasks.base import Task
from podium.tasks.classification import Classification

GRID_POINTS = 1500  # the most simplex points tried per fit (the grid gets coarser with more runs)


def rank_scaled(probs: np.ndarray) -> np.ndarray:
    """Each column's rank among the rows, scaled to [0, 1] (ties share their mean rank)."""
    ranks = pd.DataFrame(probs).rank(axis=0, method="average").to_numpy(dtype="float64")
    return (ranks - 1) / max(1, len(probs) - 1)


def combine(stack: np.ndarray, weights: np.ndarray, method: str = "weights", merge=None) -> np.ndarray:
    """(runs, rows, classes) -> (rows, classes): the weighted mean, of ranks for `rank`; or the task's merger of
    the runs' outputs with these weights (Task.output_merger: a detector's weighted boxes fusion)."""
    if merge is not None:
        return merge(list(stack), [float(w) for w in weights])
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
    task: Task  # the runs' task object: it reads the blended outputs (Task.blend_score)
    positive: int = 1  # the class a `probability` metric reads (classification)
    k: int = 0  # labels per row of a ranking metric
    merge: Callable[[list[np.ndarray], list[float] | None], np.ndarray] | None = None  # Task.output_merger; None: mean

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
    """The task's own reading of blended outputs (podium.tasks.base.Task.blend_score)."""
    return objective.task.blend_score(metric, np.asarray(values), truth, fit_values, fit_truth,
                                      positive=objective.positive, k=objective.k)


def default_objective() -> Objective:
    """Accuracy of class probabilities: what a blend of classification runs is scored by unless told."""
    return Objective(resolve_metric("accuracy"), Classification())


def fit_weights(stack: np.ndarray, truth: np.ndarray, objective: Objective | None = None) -> np.ndarray:
    """Non-negative weights summing to one: the grid point best on the fitted metric (the run's metric or its
    proxy, direction-aware), ties broken by the weights nearest equal (never by the order runs are listed)."""
    objective = objective or default_objective()
    grid = simplex_grid(len(stack))
    equal = np.full(len(stack), 1 / len(stack))
    best_key, best = None, equal
    for w in grid:
        blended = combine(stack, w, merge=objective.merge)
        key = (round(objective.fit_value(blended, truth), 12), -float(np.abs(w - equal).sum()))
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
        honest, fitted_rows = combine(stack[:, held], w, method, objective.merge), \
            combine(stack[:, other], w, method, objective.merge)
        scores.append(objective.score(honest, truth[held], fitted_rows, truth[other]))
        optimistic = combine(stack[:, held], final, method, objective.merge)
        every_row = combine(stack, final, method, objective.merge)
        in_sample.append(objective.score(optimistic, truth[held], every_row, truth))
        sign = 1 if objective.fitted.direction == "max" else -1
        fit_scores.append(sign * objective.fit_value(honest, truth[held]))
        in_sample_fit.append(sign * objective.fit_value(optimistic, truth[held]))
        for r, run_id in enumerate(run_ids):
            runs[run_id].append(objective.score(stack[r, held], truth[held], stack[r, other], truth[other]))
    return BlendScores(method, fold_ids, scores, per_fold_weights, [float(x) for x in final], in_sample, runs,
                       metric=objective.metric.label, direction=objective.metric.direction,
                       fitted_on=objective.fitted_on, fit_scores=fit_scores, in_sample_fit_scores=in_sample_fit)


def honest_oof(stack: np.ndarray, folds: np.ndarray, scores: BlendScores, method: str, merge=None) -> np.ndarray:
    """The blended OOF rows, each fold blended with the weights fitted on the other folds."""
    out = np.zeros(stack.shape[1:], dtype="float64")
    for k, w in zip(scores.folds, scores.fold_weights):
        held = folds == k
        out[held] = combine(stack[:, held], np.asarray(w), method, merge)
    return out
