"""`make blend`: several finished runs of one competition and one split, averaged into one submission.

Blend weights are fitted on the runs' out-of-fold (OOF) predictions, so the rows they are scored on
must not be the rows they were fitted on: the honest blended CV fits the weights on every fold but k
and scores fold k with them (mean +/- sd over folds), exactly like a run's own CV. The in-sample figure
(weights fitted on all OOF rows, scored on the same rows) is reported beside it only to show how much
it flatters; the final weights (fitted on all OOF rows) are the ones applied to the test predictions.

Methods: `weights` (a non-negative weight per run, summing to one, chosen on a simplex grid to maximise
the task's score; classification ties broken by the lower log loss, then by the weights nearest equal),
`mean` (equal weights), `rank` (classification only: each class column replaced by its rank among the
rows, scaled to [0, 1], then averaged: what matters for ranking metrics).

How each task is averaged (always the weighted mean of the runs' TTA-averaged outputs):
classification: the class probabilities (the argmax is the label; scored by accuracy);
segmentation: the mask probabilities pixel by pixel, thresholded afterwards at mask_threshold (dice);
localization: the class probabilities as in classification, and each box coordinate (x1, y1, x2, y2) as
the weighted mean of the runs' coordinates (box IoU). Segmentation and localization read the raw OOF
outputs that training saves beside oof.parquet (tasks.OOF_OUTPUTS); runs trained before that are refused.

The blend is recorded like a run: runs/<blend-id>/config.yaml (the first run's config under the name
blend-<name>, so `make submit RUN=<blend-id>` finds it), blend.yaml (runs, method, weights) and
metrics.json (cv_mean, cv_std, ...); its submission is submissions/<slug>/<blend-id>.csv, written and
validated by the task's own writer (podium.training.predict.write_task_submission).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
from podium.models.localization import box_iou
from podium.progress import progress as progress_bar
from podium.scoring.segmentation import dice_per_image
from podium.submission.validate import read_competition_sample
from podium.tasks import OOF_OUTPUTS, get_task
from podium.tasks.base import TestPredictions
from podium.training.predict import write_task_submission
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
    notes: list[str] = field(default_factory=list)  # what reading its artefacts found worth saying

    @property
    def class_probabilities(self) -> bool:
        """What is averaged is oof.parquet's prob_<class> columns (the task saves no raw outputs,
        Task.saved_outputs_dtype): scored against the labels, and ranks make sense."""
        return self.outputs is None

    @property
    def probs(self) -> np.ndarray:
        """What is averaged: class probabilities, or the saved masks / class probabilities + box."""
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
    return BlendRun(run_id, cfg, data, oof, classes, outputs, notes)


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


# ------------------------------------------------------------------------------------ the averaging
def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, EPS, 1.0)).mean())


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


def dice_score(masks: np.ndarray, truth: np.ndarray) -> float:
    return float(dice_per_image(truth, masks).mean())


def box_score(outputs: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU of the boxes (the last four columns, after the class probabilities)."""
    return float(box_iou(truth, outputs[:, -4:]).mean())


SCORES = {"classification": accuracy, "segmentation": dice_score, "localization": box_score}


def fit_weights(stack: np.ndarray, labels: np.ndarray, score: Callable = accuracy) -> np.ndarray:
    """Non-negative weights summing to one: the grid point with the best score, then (classification) the
    lowest log loss, then the one nearest equal weights (a tie never favours whichever run is listed first)."""
    grid = simplex_grid(len(stack))
    equal = np.full(len(stack), 1 / len(stack))
    best_key, best = None, equal
    for w in grid:
        blended = combine(stack, w)
        second = -log_loss(blended, labels) if score is accuracy else 0.0
        key = (score(blended, labels), second, -float(np.abs(w - equal).sum()))
        if best_key is None or key > best_key:
            best_key, best = key, w
    return best


@dataclass
class BlendScores:
    method: str
    folds: list[int]
    fold_scores: list[float]  # honest: fold k scored with weights fitted on the other folds
    fold_weights: list[list[float]]
    weights: list[float]  # fitted on all OOF rows: what the test predictions get
    in_sample_scores: list[float]  # fold k scored with the all-rows weights (optimistic for `weights`)
    run_scores: dict[str, list[float]]  # each run alone, per fold, on the same OOF rows

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.fold_scores))

    @property
    def in_sample_mean(self) -> float:
        return float(np.mean(self.in_sample_scores))


def blend_oof(stack: np.ndarray, labels: np.ndarray, folds: np.ndarray, run_ids: list[str], method: str,
              score: Callable = accuracy, progress: bool = False) -> BlendScores:
    """Honest blended CV: weights fitted on the other folds' rows, scored on the held-out fold.

    `stack` is (runs, rows, classes) of OOF probabilities aligned by row; `folds` gives each row's fold.
    Rank averaging ranks within the scored fold's rows, as the test rows are ranked among themselves.
    """
    equal = np.full(len(stack), 1 / len(stack))
    fold_ids = sorted(int(f) for f in np.unique(folds))
    if method == "weights" and len(fold_ids) < 2:
        raise PodiumError("Fitting blend weights honestly needs at least two folds.",
                          expected="runs with folds=[0, 1, ...] (k-fold)", received=f"fold(s) {fold_ids}",
                          fix="blend with method=mean or rank, or train more folds")
    final = fit_weights(stack, labels, score) if method == "weights" else equal
    scores, in_sample, per_fold_weights = [], [], []
    runs: dict[str, list[float]] = {r: [] for r in run_ids}
    for k in progress_bar(fold_ids, desc=f"blend: fit {method} on the other folds, score each fold", unit="fold",
                          enabled=progress):
        held = folds == k
        w = fit_weights(stack[:, ~held], labels[~held], score) if method == "weights" else equal
        per_fold_weights.append([float(x) for x in w])
        scores.append(score(combine(stack[:, held], w, method), labels[held]))
        in_sample.append(score(combine(stack[:, held], final, method), labels[held]))
        for r, run_id in enumerate(run_ids):
            runs[run_id].append(score(stack[r, held], labels[held]))
    return BlendScores(method, fold_ids, scores, per_fold_weights, [float(x) for x in final], in_sample, runs)


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


def run_blend(spec: BlendSpec, runs_dir: str | Path = "runs", progress: bool = True) -> BlendSummary:
    """Check, fit honestly, apply to the test predictions, write the validated submission and the record."""
    started = time.perf_counter()
    runs = [load_run(r, runs_dir) for r in spec.runs]
    check_compatible(runs)
    first = runs[0]
    check_name_free(Path(runs_dir) / blend_config(first.cfg, spec).run_id, spec)  # before minutes of fitting
    task = first.cfg.task
    if task not in SCORES:
        raise PodiumError(f"Blending {task} runs is not supported yet.", expected=f"runs of a task among: "
                          f"{', '.join(SCORES)}", received=f"task={task}", fix="submit the best single run")
    if spec.method == "rank" and not first.class_probabilities:
        raise PodiumError(f"Rank averaging is for class probabilities, not {task} outputs.",
                          expected="method=weights or mean", received=f"method=rank for task={task}",
                          fix="blend with method=weights (fitted) or mean")
    stack = np.stack([r.probs for r in runs])
    truth = oof_truth(first)
    scores = blend_oof(stack, truth, first.oof["fold"].to_numpy(), spec.runs, spec.method, SCORES[task],
                       progress=progress)
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

    cfg = blend_config(first.cfg, spec)
    competition = load_competition(cfg.competition)
    root = Path(cfg.data_dir) / competition.slug
    index = load_index(root / "index.parquet")
    classes = class_names(index, competition, get_task(task))
    if first.class_probabilities and classes != first.classes:
        raise PodiumError("The runs' classes are not the competition's classes now.", expected=str(classes),
                          received=str(first.classes), fix="retrain the runs on the current data")
    sample = read_competition_sample(root / competition.sample_submission, competition)
    rows = test_rows(index).reset_index(drop=True)  # with the sizes the mask and box writers need
    if rows["id"].astype(str).tolist() != tests[0][0]["id"].tolist():
        raise PodiumError("The runs' test predictions are not for the index's test images now.",
                          expected=f"{len(rows)} test ids of {root / 'index.parquet'}",
                          received=f"{len(tests[0][0])} ids in {first.run_id}'s test_ids.csv, not the same",
                          fix="make predict the runs again on the current data")
    predictions = TestPredictions(rows=rows, readable=rows["ok"].to_numpy(dtype=bool), values=blended)
    run_dir = Path(runs_dir) / cfg.run_id
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
        "metric": get_task(task).metric_name, "method": spec.method, "runs": spec.runs,
        "weights": dict(zip(spec.runs, scores.weights)), "cv_mean": scores.cv_mean, "cv_std": scores.cv_std,
        "in_sample_cv_mean": scores.in_sample_mean,
        "folds": [{"fold": k, "score": s, "weights": w, "in_sample_score": i}
                  for k, s, w, i in zip(scores.folds, scores.fold_scores, scores.fold_weights,
                                        scores.in_sample_scores)],
        "run_oof_cv": {r: {"mean": float(np.mean(v)), "std": float(np.std(v))} for r, v in scores.run_scores.items()},
        "run_cv_tta": {r: {"mean": m, "std": s} for r, (m, s) in run_cv.items()},
        "split": first.data.get("split"), "submission": str(submission), "wall_seconds": seconds,
    })
    return BlendSummary(cfg.run_id, run_dir, submission, scores, spec.runs, run_cv, seconds,
                        [n for r in runs for n in r.notes])


def _folds_used(run_dir: Path) -> list[dict]:
    record = artefacts.read_record(run_dir / "test_predictions.npy") or {}
    return list(record.get("folds", []))


def oof_truth(run: BlendRun) -> np.ndarray:
    """What the OOF rows are scored against: the labels, or (boxes, masks) the index's targets by id."""
    if run.class_probabilities:
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


def summary_lines(summary: BlendSummary) -> list[str]:
    """What `make blend` prints: each run's CV, the honest blended CV, the in-sample figure and the weights."""
    s = summary.scores
    width = max(len(r) for r in [*summary.runs, "blend (honest)"])
    lines = [f"blend {summary.blend_id} ({s.method}, {len(summary.runs)} runs, folds {s.folds})",
             f"{'':<{width}}  {'CV (OOF, TTA)':<17}  final weight"]
    for run_id, w in zip(summary.runs, s.weights):
        v = s.run_scores[run_id]
        lines.append(f"{run_id:<{width}}  {np.mean(v):.4f} +/- {np.std(v):.4f}  {w:.3f}")
    how = "each fold scored with weights fitted on the other folds" if s.method == "weights" else \
        "equal weights: nothing fitted"
    lines.append(f"{'blend (honest)':<{width}}  {s.cv_mean:.4f} +/- {s.cv_std:.4f}  ({how})")
    if s.method == "weights":
        lines.append(f"{'in-sample':<{width}}  {s.in_sample_mean:.4f}            (weights fitted on the scored "
                     "rows: optimistic, for comparison only)")
        lines.append("per-fold weights: " + "; ".join(
            f"fold {k}: " + ", ".join(f"{x:.2f}" for x in w) for k, w in zip(s.folds, s.fold_weights)))
    lines += [f"note: {note}" for note in summary.notes]
    lines += [f"submission: {summary.submission} (validated)",
              f"recorded: {summary.run_dir} (make submit RUN={summary.blend_id})"]
    return lines
