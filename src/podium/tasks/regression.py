"""One number per image (a share, a count, a score: PetFinder's Pawpularity, APTOS' grade): a linear unit
on the backbone, MSE or Huber loss (`regression_loss`), RMSE and MAE.

Targets. The labels CSV's `label_column` holds the number; the index labels each image with its target
quintile (q1..q5, by rank), so the saved split stratifies on binned targets with the folds code every task
shares, and `make data` reports five balanced bins instead of hundreds of "classes". The model learns the
*standardised* target, (y - mean) / sd, with the mean and sd of every labelled image (one affine map per
run, so fold outputs average as they are; it tells the model nothing a bias does not learn): a linear unit
starting near 0 then fits any scale at the same learning rate. The run keeps the pair in
`target_scale.json` (written by the run report, by `make predict` and by packaging) and every number
outside the model - fold scores, oof.parquet, the submission - is in the target's own units. The
logged val_rmse / val_mae are in standard deviations.

Ordinal targets (`metric: qwk`, integer grades). The number is turned into grades by cut points fitted
on the out-of-fold predictions (coordinate search from k + 0.5, maximising QWK): each fold's rows are
graded with cuts fitted on the *other* folds' rows, so the reported QWK is honest; cuts fitted on every
OOF row go to `qwk_cuts.json`, which grades the test images and which the inference package carries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.competitions import load_competition
from podium.data.dataset import competition_root
from podium.data.folds import labeled_rows
from podium.data.index import load_index
from podium.data.source_files import first_few, read_labels_table
from podium.errors import PodiumError
from podium.io import atomic_path, write_json
from podium.scoring.forms import from_numbers, grade_values, start_cuts, to_grades
from podium.scoring.registry import mae, qwk, resolve_metric, rmse
from podium.submission.validate import submission_frame, validate_number_submission
from podium.tasks.base import FoldScores, PredictSummary, Task

# imported on first use: `import podium.tasks` loads no keras
regression = LazyModule("podium.models.regression")

TARGET_SCALE = "target_scale.json"  # in the run folder: the mean and sd the model's outputs are standardised by
QWK_CUTS = "qwk_cuts.json"  # in the run folder: cut points between grades, fitted on every OOF row
N_BINS = 5  # target quintiles the split stratifies on
CUT_STEPS = 40  # candidates per cut and round of the coordinate search
CUT_ROUNDS = 5
QWK = resolve_metric("qwk")  # write_cuts scores grades with it whatever the spec says (the file is for qwk runs)


# ---- targets --------------------------------------------------------------------------------------
def read_targets(spec, data_root: Path) -> pd.DataFrame:
    """(id, target) of the labels CSV: every target a finite number, else an error naming the rows."""
    path, frame = read_labels_table(spec, data_root)
    for role, column in (("id", spec.id_column), ("target", spec.label_column)):
        if column not in frame.columns:
            raise PodiumError(f"The labels CSV {path} has no {role} column '{column}'.",
                              expected=f"columns {spec.id_column!r} and {spec.label_column!r}",
                              received=", ".join(map(str, frame.columns)),
                              fix="fix id_column / label_column in the competition spec")
    values = pd.to_numeric(frame[spec.label_column].str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise PodiumError(f"{int(bad.sum())} rows of {path} have no numeric target in '{spec.label_column}'.",
                          expected="a finite number on every row (task: regression)",
                          received=f"ids {first_few(frame.loc[bad, spec.id_column].tolist())}: "
                                   f"{first_few(frame.loc[bad, spec.label_column].tolist())}",
                          fix="fix those rows, or drop them from the labels CSV")
    return pd.DataFrame({"id": frame[spec.id_column].astype(str), "target": values})


def target_bins(ids, values, n_bins: int = N_BINS) -> np.ndarray:
    """q1..q<n_bins> per row: equal-count bins of the rank (ties broken by id), what folds stratify on."""
    order = np.lexsort((np.asarray(ids, dtype=str), np.asarray(values, dtype=float)))
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    return np.array([f"q{1 + r * n_bins // max(1, len(order))}" for r in rank])


def target_scale(values) -> tuple[float, float]:
    """(mean, sd) the model's outputs are standardised by; a constant target keeps sd 1."""
    values = np.asarray(values, dtype=float).ravel()
    sd = float(values.std()) if len(values) else 1.0
    return (float(values.mean()) if len(values) else 0.0), (sd if sd > 1e-12 else 1.0)


def _scale_of(data) -> tuple[float, float]:
    return target_scale(data.targets)


# ---- QWK cut points ---------------------------------------------------------------------------------
def _kappa(truth_index: np.ndarray, predicted_index: np.ndarray, weights: np.ndarray) -> float:
    """Quadratic weighted kappa over grade positions (what the search compares, many times: numpy only;
    the weights' scale cancels, so it ranks cuts as the registry's qwk does)."""
    k = len(weights)
    observed = np.bincount(truth_index * k + predicted_index, minlength=k * k).reshape(k, k)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / max(1, len(truth_index))
    chance = float((weights * expected).sum())
    return 1.0 - float((weights * observed).sum()) / chance if chance > 0 else 0.0


def fit_cuts(truth, predicted, grades) -> np.ndarray:
    """Cut points maximising QWK on (truth, predicted), by coordinate search from `start_cuts`: each cut in
    turn tries CUT_STEPS places between its neighbours and keeps the best (ties: the nearest to where it was)."""
    grades = np.asarray(grades, dtype=int)
    predicted = np.asarray(predicted, float)
    truth_index = np.searchsorted(grades, np.asarray(truth, int))
    weights = (grades[:, None] - grades[None, :]).astype(float) ** 2
    cuts = start_cuts(grades)
    if len(cuts) == 0 or len(predicted) == 0:
        return cuts

    def score_of(trial):
        return _kappa(truth_index, np.searchsorted(trial, predicted, side="right"), weights)

    low, high = min(predicted.min(), cuts[0]) - 1.0, max(predicted.max(), cuts[-1]) + 1.0
    best = score_of(cuts)
    for _ in range(CUT_ROUNDS):
        moved = False
        for j in range(len(cuts)):
            left = cuts[j - 1] if j > 0 else low
            right = cuts[j + 1] if j + 1 < len(cuts) else high
            for candidate in sorted(np.linspace(left, right, CUT_STEPS + 2)[1:-1], key=lambda c: abs(c - cuts[j])):
                trial = cuts.copy()
                trial[j] = candidate
                score = score_of(trial)
                if score > best + 1e-12:
                    best, cuts, moved = score, trial, True
        if not moved:
            break
    return cuts


def honest_grades(truth, predicted, folds, grades) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Each fold's rows graded by cuts fitted on the other folds' rows only (no other fold: the start cuts,
    plain rounding); returns the grades and each fold's cuts."""
    truth, predicted, folds = np.asarray(truth), np.asarray(predicted, float), np.asarray(folds)
    graded = np.zeros(len(truth), dtype=int)
    per_fold = {}
    for fold in sorted(set(folds.tolist())):
        mine = folds == fold
        cuts = fit_cuts(truth[~mine], predicted[~mine], grades) if (~mine).any() else start_cuts(grades)
        graded[mine] = to_grades(predicted[mine], cuts, grades)
        per_fold[int(fold)] = [float(c) for c in cuts]
    return graded, per_fold


def uses_qwk(spec) -> bool:
    return spec.resolved_metric.name == "qwk"


# ---- the task ---------------------------------------------------------------------------------------
class Regression(Task):
    name = "regression"
    shapes_object_share = 1.0
    class_columns = False
    output_kind = "numbers"
    score_logged = "val_rmse"
    metric_name = "rmse"
    saved_outputs_dtype = None  # its predictions are oof.parquet's prediction column, in the target's units
    compile_on_load = True
    index_label_words = {f"q{k}": f"in target quintile {k}" for k in range(1, N_BINS + 1)}

    def index_labels(self, spec, data_root: Path) -> pd.DataFrame:
        """The labels CSV's ids with their target quintile: what the index, the split and `make data` show."""
        targets = read_targets(spec, data_root)
        return pd.DataFrame({spec.id_column: targets["id"],
                             spec.label_column: target_bins(targets["id"], targets["target"])})

    def load_targets(self, spec, data_root, rows, size, classes, progress=True, cache="disk") -> np.ndarray:
        """(N, 1) float32 targets in the target's units, row for row with `rows`."""
        targets = read_targets(spec, data_root).drop_duplicates("id").set_index("id")["target"]
        found = targets.reindex(rows["id"].astype(str))
        if found.isna().any():
            raise PodiumError("Indexed train images have no target in the labels CSV.",
                              expected="one row per indexed image", received=f"ids {first_few(found[found.isna()].index.tolist())}",
                              fix=f"rebuild the index: make data COMP={spec.slug} FORCE=1")
        return found.to_numpy(dtype="float32").reshape(-1, 1)

    def batch_targets(self, cfg, data) -> np.ndarray:
        mean, sd = _scale_of(data)
        return ((np.asarray(super().batch_targets(cfg, data), dtype=float) - mean) / sd).astype("float32")

    def build_model(self, cfg, num_classes: int):
        return regression.build_regressor(cfg)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        return {"loss": regression.regression_loss(cfg.regression_loss), "metrics": regression.regression_metrics()}

    def target_values(self, data, outputs) -> np.ndarray:
        """(n,) numbers in the target's units from the model's (n, 1) standardised outputs: what a metric
        reads (a per-epoch score too): scoring.forms.from_numbers turns them into the metric's form."""
        mean, sd = _scale_of(data)
        outputs = np.asarray(outputs, dtype=float)
        return outputs.reshape(len(outputs), -1)[:, 0] * sd + mean

    own_score = "rmse"

    def metric_pair(self, metric, data, positions, outputs):
        """Numbers in the target's units (rmse, mae), or grades by plain rounding (qwk: a fold cannot see the
        other folds its cuts are fitted on; the run's CV grades each fold by them, `oof_score`)."""
        truth = data.targets[positions, 0].astype(float)
        grades = grade_values(data.targets[:, 0]) if metric.reads == "labels" else None
        return from_numbers(metric, truth, self.target_values(data, outputs), grades=grades)

    def oof_score(self, metric, data, oof, fold_dirs):
        """The run's CV over every out-of-fold row: qwk grades each fold by cuts fitted on the other folds."""
        truth, values = oof["target"].to_numpy(float), oof["prediction"].to_numpy(float)
        if metric.name == "qwk":
            grades = grade_values(data.targets[:, 0])
            graded, _ = honest_grades(truth, values, oof["fold"].to_numpy(), grades)
            return metric(np.rint(truth).astype(int), graded)
        return metric(*from_numbers(metric, truth, values))

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        mean, _ = _scale_of(data)
        truth = data.targets[positions, 0].astype(float)
        plain_values, tta_values = self.target_values(data, plain), self.target_values(data, with_tta)
        oof = pd.DataFrame({"id": data.ids[positions], "fold": fold, "label": data.labels[positions],
                            "target": truth, "prediction": tta_values, "prediction_plain": plain_values})
        # `extra` is read as "no TTA" (the run summary): plain predictions
        extra = {"mae": mae(truth, plain_values), "rmse_mean_predictor": rmse(truth, np.full(len(truth), mean))}
        if uses_qwk(data.spec):  # plain rounding here; cuts fitted on the other folds in the run report
            metric = data.spec.resolved_metric
            extra["qwk_rounded"] = metric(*from_numbers(metric, truth, plain_values,
                                                        grades=grade_values(data.targets[:, 0])))
        return FoldScores(rmse(truth, plain_values), rmse(truth, tta_values), extra, oof)

    def per_sample_scores(self, data, positions, predictions) -> np.ndarray:
        """1 - |error| in standard deviations, floored at 0."""
        _, sd = _scale_of(data)
        error = np.abs(self.target_values(data, predictions) - data.targets[positions, 0]) / sd
        return np.clip(1.0 - error, 0.0, 1.0)

    def run_report(self, data, oof, run_dir, plots):
        """The scale the outputs are standardised by, and for QWK the honest per-fold graded score and the
        final cuts (qwk_cuts.json)."""
        mean, sd = _scale_of(data)
        write_scale(run_dir, mean, sd, len(data.targets))
        more = {"rmse_oof": rmse(oof["target"], oof["prediction"]), "mae_oof": mae(oof["target"], oof["prediction"])}
        if uses_qwk(data.spec):
            more.update(write_cuts(run_dir, oof, grade_values(data.targets[:, 0])))
        return more, None

    package_file_names = (TARGET_SCALE, QWK_CUTS)

    def package_files(self, cfg, classes):
        run_scale(cfg)  # written when missing
        files = [Path(cfg.run_dir) / TARGET_SCALE]
        if uses_qwk(load_competition(cfg.competition)):
            run_cuts(cfg)
            files.append(Path(cfg.run_dir) / QWK_CUTS)
        return files

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path):
        mean, sd = run_scale(cfg)
        values = np.full(len(predictions.rows), mean)  # an undecodable image: the training mean
        values[predictions.readable] = np.asarray(predictions.values, dtype=float).reshape(
            int(predictions.readable.sum()), -1)[:, 0] * sd + mean
        if uses_qwk(spec):
            cuts, grades = run_cuts(cfg)
            texts = [str(int(g)) for g in to_grades(values, cuts, grades)]
        else:
            texts = [f"{v:.6g}" for v in values]
        id_column, column = spec.submission_id_column, spec.submission_label_column
        frame = submission_frame(sample, dict(zip(predictions.rows["id"], texts)), id_column, column)
        validate_number_submission(frame, sample, id_column, column, integers=uses_qwk(spec))
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        shown = pd.to_numeric(frame[column])
        counts = ({f"grade {k:g}": int(v) for k, v in shown.value_counts().sort_index().items()} if uses_qwk(spec)
                  else {"numbers": len(shown)})
        return PredictSummary(submission=path, n_rows=len(frame), n_unreadable=predictions.n_unreadable,
                              counts=counts, unreadable_note="the training mean" + (" graded" if uses_qwk(spec) else ""))

    # ---- blends: numbers averaged in the target's units; QWK cut on the fit rows only ------------------
    def blend_oof(self, oof):
        """oof.parquet's TTA prediction (the target's units) against its target; `label` holds only the
        quintile bins the split stratified on."""
        return oof[["prediction"]].to_numpy(dtype="float64"), oof["target"].to_numpy(dtype="float64")

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        """rmse/mae on the numbers; qwk on grades cut where cuts fitted on the fit rows put them (the honest
        per-fold figure when the fit rows are the other folds', as in the run's own report)."""
        values = np.asarray(values, dtype=float).reshape(len(values), -1)[:, 0]
        if metric.reads != "labels":
            return metric(*from_numbers(metric, truth, values))
        fit_values = values if fit_values is None else np.asarray(fit_values, dtype=float).reshape(len(fit_values), -1)[:, 0]
        fit_truth = truth if fit_truth is None else fit_truth
        grades = grade_values(np.concatenate([np.asarray(truth, float), np.asarray(fit_truth, float)]))
        cuts = fit_cuts(np.asarray(fit_truth).astype(int), fit_values, grades)
        return metric(*from_numbers(metric, truth, values, cuts=cuts, grades=grades))

    def blend_files(self, run_dirs, blend_dir, metric, truth, values, folds, classes=()):
        """target_scale.json (test_predictions.npy are standardised outputs: only runs of one scale average),
        and for qwk the blend's qwk_cuts.json, fitted on its blended OOF rows."""
        records = []
        for run_dir in map(Path, run_dirs):
            saved = run_dir / TARGET_SCALE
            if not saved.is_file():
                raise PodiumError(f"Run '{run_dir.name}' has no {TARGET_SCALE}, so its test predictions cannot be "
                                  "read in the target's units.", expected=str(saved), received="no such file",
                                  fix="make predict the run (it writes the file)")
            records.append(json.loads(saved.read_text(encoding="utf-8")))
        first = records[0]
        for run_dir, record in zip(run_dirs[1:], records[1:]):
            if not (np.isclose(record["mean"], first["mean"], rtol=1e-9, atol=0)
                    and np.isclose(record["sd"], first["sd"], rtol=1e-9, atol=0)):
                raise PodiumError(f"Runs '{Path(run_dirs[0]).name}' and '{Path(run_dir).name}' standardise their "
                                  "outputs by different target scales, so their test predictions do not average.",
                                  expected=f"mean {first['mean']}, sd {first['sd']} ({TARGET_SCALE})",
                                  received=f"mean {record['mean']}, sd {record['sd']}",
                                  fix="retrain the runs on the same labelled images (make train FORCE=1)")
        write_json(Path(blend_dir) / TARGET_SCALE, {**first, "runs": [Path(d).name for d in run_dirs]})
        recorded = {"target_scale": {"mean": first["mean"], "sd": first["sd"]}}
        if metric.name == "qwk":
            oof = pd.DataFrame({"fold": np.asarray(folds), "target": np.asarray(truth, dtype=float),
                                "prediction": np.asarray(values, dtype=float).reshape(len(truth), -1)[:, 0]})
            recorded["qwk_cuts"] = write_cuts(blend_dir, oof, grade_values(oof["target"]))["qwk_cuts"]
        return recorded

    def validate_submission(self, frame, sample, spec, index) -> None:
        validate_number_submission(frame, sample, spec.submission_id_column, spec.submission_label_column,
                         integers=uses_qwk(spec))

    # ---- `make spec` --------------------------------------------------------------------------------------
    spec_checks_labels = False

    def spec_classes(self, labels):
        return None  # numbers, not classes


# ---- the run folder's files ------------------------------------------------------------------------
def write_scale(run_dir: Path, mean: float, sd: float, n: int) -> None:
    write_json(Path(run_dir) / TARGET_SCALE, {"mean": mean, "sd": sd,
                                              "chosen_on": f"the targets of {n} labelled images"})


def run_scale(cfg) -> tuple[float, float]:
    """The run's (mean, sd): target_scale.json, else computed from the competition's labelled images (the
    same rows training read) and written there."""
    saved = Path(cfg.run_dir) / TARGET_SCALE
    if saved.is_file():
        record = json.loads(saved.read_text(encoding="utf-8"))
        return float(record["mean"]), float(record["sd"])
    spec, root = competition_root(cfg)
    index_path = root / "index.parquet"
    if not index_path.is_file():
        raise PodiumError(f"Run {cfg.run_dir} has no {TARGET_SCALE}, and there is no index to compute it from.",
                          expected=f"{saved}, or the competition's data at {root}",
                          received="neither", fix="package the run with make kernel again, or run make data")
    rows = labeled_rows(load_index(index_path))
    values = Regression().load_targets(spec, root, rows, 0, [])
    mean, sd = target_scale(values)
    write_scale(cfg.run_dir, mean, sd, len(values))
    return mean, sd


def write_cuts(run_dir: Path, oof: pd.DataFrame, grades) -> dict:
    """Honest QWK (each fold graded by the other folds' cuts) and the final cuts on every OOF row."""
    truth = oof["target"].to_numpy().astype(int)
    predicted = oof["prediction"].to_numpy(dtype=float)
    graded, per_fold = honest_grades(truth, predicted, oof["fold"].to_numpy(), grades)
    cuts = fit_cuts(truth, predicted, grades)
    write_json(Path(run_dir) / QWK_CUTS, {
        "grades": [int(g) for g in grades], "cuts": [float(c) for c in cuts], "per_fold": per_fold,
        "chosen_on": f"{len(oof)} out-of-fold predictions",
        "note": "" if len(per_fold) > 1 else "one fold trained: its honest QWK uses plain rounding (k + 0.5)"})
    return {"qwk_oof": qwk(truth, graded), "qwk_rounded_oof": qwk(*from_numbers(QWK, truth, predicted, grades=grades)),
            "qwk_cuts": [float(c) for c in cuts]}


def run_cuts(cfg) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, grades): fitted on every finished fold's oof.parquet and recorded in qwk_cuts.json; the saved
    file when the run folder has no OOF rows (a packaged inference kernel)."""
    run_dir = Path(cfg.run_dir)
    parts = [pd.read_parquet(p) for p in sorted(run_dir.glob("fold-*/oof.parquet"))
             if (p.parent / "metrics.json").is_file()]
    if parts:
        oof = pd.concat(parts, ignore_index=True)
        write_cuts(run_dir, oof, grade_values(oof["target"]))
    saved = run_dir / QWK_CUTS
    if not saved.is_file():
        raise PodiumError(f"Run {run_dir} has no {QWK_CUTS} and no out-of-fold predictions to fit it on.",
                          expected="a trained run, or a package carrying qwk_cuts.json",
                          received=", ".join(sorted(p.name for p in run_dir.iterdir())) if run_dir.is_dir() else "no folder",
                          fix="train the run (make train), or package it again (make kernel)")
    record = json.loads(saved.read_text(encoding="utf-8"))
    return np.asarray(record["cuts"], dtype=float), np.asarray(record["grades"], dtype=int)

