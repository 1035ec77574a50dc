"""The runs a blend reads (podium.blend): their configs, out-of-fold rows and test predictions, checked to be
of one competition, task, split and metric."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from podium import artefacts
from podium.config import ExperimentConfig, load_config
from podium.data.competitions import load_competition
from podium.data.dataset import load_labeled_data
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import read_yaml_mapping
from podium.paths import check_name
from podium.scoring.registry import Metric
from podium.scoring.run_metric import recorded_metric
from podium.tasks.base import OOF_OUTPUTS, Task

METHODS = ("weights", "mean", "rank")


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


def run_config(run_id: str, runs_dir: str | Path = "runs") -> ExperimentConfig:
    """A trained run's saved config (the blend's entry point resolves the runs' task from the first one's)."""
    run_dir = Path(runs_dir) / run_id
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise PodiumError(f"Run '{run_id}' has no saved config.", expected=str(saved), received="no such file",
                          fix="check the run id against the folders in runs/ (make train writes them)")
    if (run_dir / "blend.yaml").is_file():
        raise PodiumError(f"'{run_id}' is a blend, which has no out-of-fold predictions of its own to refit.",
                          expected="trained runs (folders with fold-<k>/oof.parquet)", received=f"blend {run_id}",
                          fix=f"blend its runs together instead (listed in {run_dir / 'blend.yaml'})")
    return load_config(saved)


def load_run(run_id: str, task: Task, runs_dir: str | Path = "runs") -> BlendRun:
    """A finished run of `task`: config.yaml, data.json and every trained fold's oof.parquet."""
    run_dir = Path(runs_dir) / run_id
    saved = run_dir / "config.yaml"
    cfg = run_config(run_id, runs_dir)
    if cfg.task != task.name:
        raise PodiumError(f"Run '{run_id}' trained {cfg.task}, not {task.name}, so it cannot be blended.",
                          expected=f"runs of task {task.name}", received=f"task {cfg.task}",
                          fix="blend runs of one task")
    saves_outputs = task.saved_outputs_dtype is not None  # else oof.parquet holds them
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
    return BlendRun(run_id, cfg, data, oof, classes, outputs, task.blend_oof(oof), notes)


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


def blend_config(first: ExperimentConfig, spec: BlendSpec) -> ExperimentConfig:
    """The config recorded for the blend: the first run's, named blend-<name>; its run_id is the blend id."""
    return dataclasses.replace(first, name=f"blend-{spec.label}")


def load_test_predictions(run: BlendRun, task: Task, runs_dir: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
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
                             kinds=(task.output_kind,),
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


def folds_used(run_dir: Path) -> list[dict]:
    """The folds a run's test predictions were made by (their stamp), recorded with the blend's."""
    record = artefacts.read_record(run_dir / "test_predictions.npy") or {}
    return list(record.get("folds", []))


def oof_truth(run: BlendRun, task: Task, metric: Metric | None = None) -> np.ndarray:
    """What the OOF rows are scored against: class indices, 0/1 label rows (multi-label), or (boxes, masks)
    the index's targets by id; a localization run scored by a label metric: its class indices; a task that
    reads its truth from oof.parquet (Task.blend_oof, regression: the target), that."""
    if run.oof_values is not None:
        return run.oof_values[1]
    truth = task.blend_truth(run.oof, run.classes, metric)
    if truth is not None:
        return truth
    data = load_labeled_data(run.cfg, task, progress=False)
    position = {str(i): k for k, i in enumerate(data.ids)}
    missing = [i for i in run.oof["id"] if i not in position]
    if missing:
        raise PodiumError(f"Run '{run.run_id}' has OOF rows the index no longer has.", expected="the index's ids",
                          received=f"{len(missing)} unknown, e.g. {missing[0]!r}",
                          fix="retrain the runs on the current data (make train FORCE=1)")
    return np.asarray(data.targets[[position[i] for i in run.oof["id"]]])
