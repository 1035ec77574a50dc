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

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium import artefacts
from podium.config import save_config
from podium.data.competitions import load_competition
from podium.data.dataset import test_rows
from podium.data.index import class_names, load_index
from podium.errors import PodiumError
from podium.io import atomic_path, write_csv, write_json, write_yaml
from podium.runners.predict import write_task_submission
from podium.scoring import calibration
from podium.scoring.registry import Metric
from podium.submission.validate import read_competition_sample
from podium.tasks.base import Task, TestPredictions, normalised_rows
from podium.workflow import class_prior
from podium.blend.fit import (GRID_POINTS, BlendScores, Objective, blend_oof, combine, default_objective,
                              fit_weights, honest_oof, rank_scaled, simplex_grid)
from podium.blend.runs import (METHODS, BlendRun, BlendSpec, blend_config, check_compatible, check_name_free,
                               check_same_metric, folds_used, load_blend_spec, load_run, load_test_predictions,
                               oof_truth, run_config)

__all__ = ["GRID_POINTS", "METHODS", "BlendRun", "BlendScores", "BlendSpec", "BlendSummary", "Objective",
           "blend_config", "blend_oof", "check_compatible", "check_name_free", "check_same_metric", "combine",
           "default_objective", "fit_weights", "honest_oof", "load_blend_spec", "load_run", "load_test_predictions",
           "oof_truth", "rank_scaled", "run_blend", "run_config", "run_objective", "simplex_grid", "summary_lines"]


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


@dataclass
class _Fitted:
    """The blend's fit on the runs' OOF rows: scores, the truth and folds they were scored on, the blended rows."""

    scores: BlendScores
    truth: np.ndarray
    folds: np.ndarray
    honest: np.ndarray  # each fold blended with the weights fitted on the other folds
    final: np.ndarray  # every row blended with the final weights


def run_objective(metric: Metric, task: Task, competition, classes: list[str], merge=None) -> Objective:
    """The objective of a blend of `task` runs: the metric, the positive class and k of the competition, and how
    the runs' outputs combine (None: the weighted mean; Task.output_merger)."""
    k = competition.resolved_top_k if metric.reads == "ranking" else 0
    return Objective(metric, task, task.blend_positive(competition, classes), k, merge)


def run_blend(spec: BlendSpec, task: Task, runs_dir: str | Path = "runs", progress: bool = True) -> BlendSummary:
    """Check, fit honestly, apply to the test predictions, write the validated submission and the record.
    `task` is the runs' task object (the entry point resolves it from the first run's config: run_config)."""
    started = time.perf_counter()
    runs, metric = _checked_runs(spec, task, runs_dir)
    first, cfg = runs[0], blend_config(runs[0].cfg, spec)
    competition = load_competition(cfg.competition)
    root = Path(cfg.data_dir) / competition.slug
    index = load_index(root / "index.parquet")
    classes = class_names(index, competition, task)
    if first.class_probabilities and classes != first.classes:
        raise PodiumError("The runs' classes are not the competition's classes now.", expected=str(classes),
                          received=str(first.classes), fix="retrain the runs on the current data")
    objective = run_objective(metric, task, competition, classes, task.output_merger(cfg))
    fitted = _fit(runs, task, spec, objective, progress)
    rows, blended = _blended_test(runs, task, runs_dir, root, index, fitted.scores, spec.method, objective.merge)
    run_dir = Path(runs_dir) / cfg.run_id
    extra = task.blend_files([Path(runs_dir) / r for r in spec.runs], run_dir, metric, fitted.truth, fitted.final,
                             fitted.folds, classes)  # e.g. multilabel thresholds, regression's scale and QWK cuts
    calibrated = None
    if spec.method != "rank" and calibration.applies(metric, task.name) and len(fitted.scores.folds) > 1:
        # fitted on the honest blended OOF rows (fold k blended with its own weights), each fold's T on the others
        calibrated = calibration.save_calibration(run_dir, calibration.calibrate(
            metric, fitted.truth, normalised_rows(fitted.honest), fitted.folds, classes, objective.positive))
        extra["calibration"] = calibrated.to_dict()
    predictions = TestPredictions(rows=rows, readable=rows["ok"].to_numpy(dtype=bool), values=blended)
    submission = Path(cfg.submissions_dir) / competition.slug / f"{cfg.run_id}.csv"
    write_task_submission(cfg, task, competition, predictions,
                          read_competition_sample(root / competition.sample_submission, competition), submission,
                          classes, class_prior(index, classes, task))
    _save_predictions(run_dir, spec, task, runs_dir, index, rows, blended)
    run_cv = {r.run_id: (_metric(r, "cv_tta_mean", runs_dir), _metric(r, "cv_tta_std", runs_dir)) for r in runs}
    seconds = time.perf_counter() - started
    _write_record(run_dir, cfg, spec, metric, fitted.scores, competition.slug, {
        "run_cv_tta": {r: {"mean": m, "std": s} for r, (m, s) in run_cv.items()},
        "split": first.data.get("split"), "submission": str(submission), "wall_seconds": seconds, **extra})
    return BlendSummary(cfg.run_id, run_dir, submission, fitted.scores, spec.runs, run_cv, seconds,
                        notes=[f"note: {n}" for r in runs for n in r.notes] +
                        ([calibrated.summary()] if calibrated is not None else []))


def _checked_runs(spec: BlendSpec, task: Task, runs_dir: str | Path) -> tuple[list[BlendRun], Metric]:
    """The runs, checked to blend (one competition, task, split, metric) and the blend's name to be free."""
    runs = [load_run(r, task, runs_dir) for r in spec.runs]
    check_compatible(runs)
    first = runs[0]
    check_name_free(Path(runs_dir) / blend_config(first.cfg, spec).run_id, spec)  # before minutes of fitting
    if spec.method == "rank" and not first.class_probabilities:
        raise PodiumError(f"Rank averaging is for class probabilities, not {task.name} outputs (ranks scaled to "
                          "[0, 1] are no longer masks, boxes or numbers in the target's units).",
                          expected="method=weights or mean", received=f"method=rank for task={task.name}",
                          fix="blend with method=weights (fitted) or mean")
    return runs, check_same_metric(runs, runs_dir)


def _fit(runs: list[BlendRun], task: Task, spec: BlendSpec, objective: Objective, progress: bool) -> _Fitted:
    """Weights fitted honestly on the runs' OOF rows; the blended rows, per fold and with the final weights."""
    stack = np.stack([r.probs for r in runs])
    truth = oof_truth(runs[0], task, objective.metric)
    folds = runs[0].oof["fold"].to_numpy()
    scores = blend_oof(stack, truth, folds, spec.runs, spec.method, objective, progress=progress)
    return _Fitted(scores, truth, folds, honest_oof(stack, folds, scores, spec.method, objective.merge),
                   combine(stack, np.asarray(scores.weights), spec.method, objective.merge))


def _blended_test(runs: list[BlendRun], task: Task, runs_dir: str | Path, root: Path, index: pd.DataFrame,
                  scores: BlendScores, method: str, merge=None) -> tuple[pd.DataFrame, np.ndarray]:
    """The index's test rows (with the sizes the mask and box writers need) and the runs' test predictions
    blended with the final weights; runs that predicted other images or shapes are refused."""
    first = runs[0]
    tests = [load_test_predictions(r, task, runs_dir) for r in runs]
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
    blended = combine(np.stack([values for _, values in tests]), np.asarray(scores.weights), method,
                      merge).astype("float32")
    rows = test_rows(index).reset_index(drop=True)
    if rows["id"].astype(str).tolist() != tests[0][0]["id"].tolist():
        raise PodiumError("The runs' test predictions are not for the index's test images now.",
                          expected=f"{len(rows)} test ids of {root / 'index.parquet'}",
                          received=f"{len(tests[0][0])} ids in {first.run_id}'s test_ids.csv, not the same",
                          fix="make predict the runs again on the current data")
    return rows, blended


def _save_predictions(run_dir: Path, spec: BlendSpec, task: Task, runs_dir: str | Path, index: pd.DataFrame,
                      rows: pd.DataFrame, blended: np.ndarray) -> None:
    """The blend's test predictions and ids, stamped as a run's are (podium.artefacts), so a blend is blended
    or pseudo-labelled from like a run."""
    _save_npy(run_dir / "test_predictions.npy", blended)
    write_csv(run_dir / "test_ids.csv", rows[["id", "ok"]])
    artefacts.stamp(run_dir / "test_predictions.npy", images=artefacts.test_images(index), made_by="make blend",
                    kind="ranks" if spec.method == "rank" else task.output_kind,
                    remake=f'make blend RUNS="{" ".join(spec.runs)}" BLEND_METHOD={spec.method} '
                           f"BLEND_NAME={spec.label}",
                    inputs=[Path(runs_dir) / r / "test_predictions.npy" for r in spec.runs],
                    folds=[{"run": r, **f} for r in spec.runs for f in folds_used(Path(runs_dir) / r)],
                    companions=[run_dir / "test_ids.csv"])


def _write_record(run_dir: Path, cfg, spec: BlendSpec, metric: Metric, scores: BlendScores, slug: str,
                  more: dict) -> None:
    """config.yaml (`make submit RUN=<blend-id>` finds it), blend.yaml and metrics.json (`more` at its end)."""
    save_config(cfg, run_dir / "config.yaml")
    write_yaml(run_dir / "blend.yaml", {"runs": spec.runs, "method": spec.method, "name": spec.label,
                                        "weights": dict(zip(spec.runs, scores.weights))})
    write_json(run_dir / "metrics.json", {
        "run_id": cfg.run_id, "kind": "blend", "competition": slug, "task": cfg.task,
        "metric": metric.label, "metric_spec": metric.to_config(), "direction": metric.direction,
        "fitted_on": scores.fitted_on if spec.method == "weights" else "nothing (equal weights)",
        "method": spec.method, "runs": spec.runs,
        "weights": dict(zip(spec.runs, scores.weights)), "cv_mean": scores.cv_mean, "cv_std": scores.cv_std,
        "in_sample_cv_mean": scores.in_sample_mean,
        "folds": [{"fold": k, "score": s, "weights": w, "in_sample_score": i, "fitted_metric_score": f}
                  for k, s, w, i, f in zip(scores.folds, scores.fold_scores, scores.fold_weights,
                                           scores.in_sample_scores, scores.fit_scores)],
        "run_oof_cv": {r: {"mean": float(np.mean(v)), "std": float(np.std(v))} for r, v in scores.run_scores.items()},
        **more,
    })


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
