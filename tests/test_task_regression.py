"""Regression (podium.tasks.regression): a numeric target column, target quintiles for the split, a linear
unit on standardised targets, RMSE/MAE in the target's units, `number` submissions; QWK grades from cut points
fitted on out-of-fold predictions, honestly per fold, carried by the inference package; and the generated
shapes-regression / shapes-ordinal competitions from files to submissions that beat the train mean."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main
from podium.config import ExperimentConfig, load_config
from podium.data.competitions import CompetitionSpec, load_competition
from podium.data.dataset import in_memory_data
from podium.errors import PodiumError
from podium.experiments.synthetic import GRADE_EDGES, make_ellipse_shares, share_grades
from podium.experiments.synthetic_files import write_share_competition
from podium.scoring.forms import from_numbers
from podium.scoring.registry import qwk, resolve_metric, rmse
from podium.submission.validate import number_submission_problems, validate_number_submission
from podium.tasks import get_task
from podium.tasks.regression import (QWK_CUTS, TARGET_SCALE, fit_cuts, honest_grades, read_targets,
                                     start_cuts, target_bins, target_scale, to_grades)

ROOT = Path(__file__).resolve().parents[1]


# ---- targets ---------------------------------------------------------------------------------------
def test_target_bins_are_equal_count_quintiles_of_the_rank_ties_broken_by_id():
    values = np.array([5.0, 1.0, 2.0, 2.0, 9.0, 7.0, 3.0, 8.0, 4.0, 6.0])
    ids = [f"id{k}" for k in range(10)]
    bins = target_bins(ids, values)
    assert sorted(pd.Series(bins).value_counts().tolist()) == [2] * 5
    order = np.argsort(values, kind="stable")
    assert [bins[k] for k in order] == ["q1", "q1", "q2", "q2", "q3", "q3", "q4", "q4", "q5", "q5"]
    assert bins[2] == "q1" and bins[3] == "q2"  # equal values across a bin edge: id2 before id3
    assert list(target_bins(ids[::-1], values[::-1])) == list(bins[::-1])  # the file's row order does not matter


def test_labels_csv_targets_must_be_finite_numbers(tmp_path):
    spec = CompetitionSpec(slug="t", task="regression", layout="csv", labels_csv="labels.csv", id_column="Id",
                           label_column="score", metric="rmse")
    (tmp_path / "labels.csv").write_text("Id,score\na,1.5\nb, 2\nc,-0.25\n")
    targets = read_targets(spec, tmp_path)
    assert targets["id"].tolist() == ["a", "b", "c"] and targets["target"].tolist() == [1.5, 2.0, -0.25]
    (tmp_path / "labels.csv").write_text("Id,score\na,1.5\nb,high\nc,\nd,nan\n")
    with pytest.raises(PodiumError, match="3 rows .* no numeric target") as error:
        read_targets(spec, tmp_path)
    assert "'b'" in str(error.value)
    (tmp_path / "labels.csv").write_text("Id,value\na,1\n")
    with pytest.raises(PodiumError, match="no target column 'score'"):
        read_targets(spec, tmp_path)


def test_target_scale_is_the_mean_and_sd_and_a_constant_keeps_sd_one():
    mean, sd = target_scale(np.array([[1.0], [2.0], [3.0], [6.0]]))
    assert mean == pytest.approx(3.0) and sd == pytest.approx(np.std([1, 2, 3, 6]))
    assert target_scale([4.0, 4.0, 4.0]) == (4.0, 1.0)


# ---- model, loss, config -------------------------------------------------------------------------
def test_a_linear_unit_on_any_backbone_float32_under_mixed_precision():
    import keras

    task = get_task("regression")
    cfg = ExperimentConfig(task="regression", backbone="tiny_cnn", image_size=32, monitor="val_rmse", mode="min")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = task.build_model(cfg, 5)  # five target quintiles: the head is one unit whatever the bins
        out = model(np.zeros((2, 32, 32, 3), "float32"))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert tuple(out.shape) == (2, 1) and keras.backend.standardize_dtype(out.dtype) == "float32"
    assert model.get_layer("predictions").activation.__name__ == "linear"
    losses = {name: get_task("regression").compile_arguments(
        dataclasses.replace(cfg, regression_loss=name), 5)["loss"] for name in ("mse", "huber")}
    truth, predicted = np.array([[0.0], [0.0]], "float32"), np.array([[0.5], [3.0]], "float32")
    assert float(losses["mse"](truth, predicted)) == pytest.approx((0.25 + 9.0) / 2)
    assert float(losses["huber"](truth, predicted)) == pytest.approx((0.125 + (3.0 - 0.5)) / 2)  # delta = 1 sd


def test_regression_config_checks_monitor_augments_views_and_class_balancing():
    ExperimentConfig(task="regression", monitor="val_rmse", mode="min", augment=["flip", "crop"],
                     tta=["identity", "hflip", "shift_left"], regression_loss="huber")
    with pytest.raises(PodiumError, match="not logged by task=regression"):
        ExperimentConfig(task="regression", monitor="val_accuracy")
    for key, value in (("augment", ["zoom"]), ("augment", ["cutmix"]), ("tta", ["identity", "zoom_in"])):
        with pytest.raises(PodiumError, match="cannot move a regression target"):
            ExperimentConfig(task="regression", monitor="val_mae", mode="min", **{key: value})
    with pytest.raises(PodiumError, match="classification-only"):
        ExperimentConfig(task="regression", monitor="val_rmse", mode="min", class_weight="balanced")
    with pytest.raises(PodiumError):
        load_config(ROOT / "configs" / "shapes-regression.yaml", ["regression_loss=l1"])


# ---- fold scores ----------------------------------------------------------------------------------
def _data(targets, metric="rmse"):
    n = len(targets)
    data = in_memory_data(np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n, int), np.arange(n) % 2, ["q1"],
                          targets=np.asarray(targets, "float32").reshape(-1, 1), task="regression")
    return dataclasses.replace(data, spec=CompetitionSpec(slug="t", task="regression", metric=metric))


def test_fold_scores_are_in_the_targets_units_and_the_oof_keeps_id_target_prediction():
    task = get_task("regression")
    targets = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    data = _data(targets)
    mean, sd = target_scale(targets)
    np.testing.assert_allclose(task.batch_targets(None, data)[:, 0], (targets - mean) / sd, rtol=1e-5)
    positions = np.array([0, 2, 4])
    exact = ((targets[positions] - mean) / sd).reshape(-1, 1)
    off = exact + 1.0  # one standard deviation too high
    scores = task.fold_scores(data, positions, 0, off, exact)
    assert scores.with_tta == pytest.approx(0.0, abs=1e-9) and scores.plain == pytest.approx(sd)
    assert scores.extra["rmse_mean_predictor"] == pytest.approx(rmse(targets[positions], [mean] * 3))
    assert scores.extra["mae"] == pytest.approx(sd)  # `extra` is "no TTA": the plain predictions
    assert {"id", "target", "prediction", "fold"} <= set(scores.oof.columns)
    np.testing.assert_allclose(scores.oof["prediction"], targets[positions])
    np.testing.assert_allclose(scores.oof["prediction_plain"], targets[positions] + sd)


def test_a_qwk_competitions_fold_score_reports_plain_rounding_too():
    grades = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], float)
    data = _data(grades, metric="qwk")
    mean, sd = target_scale(grades)
    positions = np.arange(10)
    predicted = ((grades + 0.3 - mean) / sd).reshape(-1, 1)  # rounds to the truth
    scores = get_task("regression").fold_scores(data, positions, 0, predicted, predicted + 10.0)
    assert scores.extra["qwk_rounded"] == pytest.approx(1.0)  # "no TTA": the plain predictions
    with pytest.raises(PodiumError, match="integer grades"):
        get_task("regression").fold_scores(_data([0.5, 1.0, 2.0, 3.0], "qwk"), np.arange(4), 0,
                                           np.zeros((4, 1)), np.zeros((4, 1)))


# ---- QWK cut points --------------------------------------------------------------------------------
def _ordinal_predictions(n=400, seed=0):
    """A squeezed, shifted regressor of grades 0..4: plain rounding misgrades the ends."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n)
    return truth, 1.0 + 0.5 * truth + rng.normal(0, 0.25, n)


def test_cuts_start_half_way_and_the_search_beats_plain_rounding():
    grades = np.arange(5)
    np.testing.assert_allclose(start_cuts(grades), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(to_grades([-3, 0.49, 0.5, 2.2, 3.6, 9], start_cuts(grades), grades),
                                  [0, 0, 1, 2, 4, 4])
    truth, predicted = _ordinal_predictions()
    cuts = fit_cuts(truth, predicted, grades)
    rounded = qwk(truth, to_grades(predicted, start_cuts(grades), grades))
    fitted = qwk(truth, to_grades(predicted, cuts, grades))
    assert np.all(np.diff(cuts) > 0)
    assert fitted > rounded + 0.05 and fitted > 0.9, (rounded, fitted)
    np.testing.assert_allclose(cuts, 1.25 + 0.5 * np.arange(4), atol=0.15)  # half way between the squeezed grades


def test_each_folds_cuts_are_fitted_on_the_other_folds_only():
    truth, predicted = _ordinal_predictions(500, seed=1)
    folds = np.arange(500) % 5
    grades = np.arange(5)
    graded, per_fold = honest_grades(truth, predicted, folds, grades)
    for fold in range(5):
        others = folds != fold
        np.testing.assert_allclose(per_fold[fold], fit_cuts(truth[others], predicted[others], grades))
        np.testing.assert_array_equal(graded[~others], to_grades(predicted[~others], per_fold[fold], grades))
    # fold 0's own truth never reaches its cuts: scrambling it changes no cut of fold 0
    scrambled = truth.copy()
    scrambled[folds == 0] = 4 - scrambled[folds == 0]
    _, again = honest_grades(scrambled, predicted, folds, grades)
    assert again[0] == per_fold[0] and again[1] != per_fold[1]
    _, single = honest_grades(truth, predicted, np.zeros(500, int), grades)  # one fold: plain rounding
    assert single[0] == [0.5, 1.5, 2.5, 3.5]


def test_from_numbers_gives_each_metric_its_form_of_a_regression_output():
    """scoring.forms.from_numbers: numbers as they are for rmse/mae, integer grades cut for qwk (plain rounding
    by default, given cuts else), checked against scikit-learn's quadratic kappa; other forms refused."""
    from sklearn.metrics import cohen_kappa_score

    truth, values = np.array([0, 1, 2, 3, 4, 4]), np.array([0.4, 1.6, 2.2, 2.9, 3.49, 5.0])
    t, v = from_numbers(resolve_metric("rmse"), truth, values)
    np.testing.assert_array_equal(v, values)
    assert resolve_metric("rmse")(t, v) == pytest.approx(np.sqrt(np.mean((truth - values) ** 2)))
    t, graded = from_numbers(resolve_metric("qwk"), truth, values)
    assert graded.tolist() == [0, 2, 2, 3, 3, 4]  # plain rounding, clipped to the grades
    assert resolve_metric("qwk")(t, graded) == pytest.approx(cohen_kappa_score(truth, graded, weights="quadratic"))
    _, cut = from_numbers(resolve_metric("qwk"), truth, values, cuts=[0.5, 1.7, 2.5, 3.4])
    assert cut.tolist() == [0, 1, 2, 3, 4, 4]
    _, fold = from_numbers(resolve_metric("qwk"), np.array([0, 0, 4]), np.array([1.2, 2.6, 3.7]), grades=range(5))
    assert fold.tolist() == [1, 3, 4]  # a fold without grades 1..3 still grades into them
    with pytest.raises(PodiumError, match="integer grades"):
        from_numbers(resolve_metric("qwk"), np.array([0.5, 1.0]), np.array([0.5, 1.0]))
    with pytest.raises(PodiumError, match="cannot be made from a number per image"):
        from_numbers(resolve_metric("log_loss"), truth, values)


# ---- submissions -----------------------------------------------------------------------------------
def test_number_submissions_need_the_samples_ids_and_finite_numbers():
    """The `number` form's check is submission.validate's (the project's one number check)."""
    sample = pd.DataFrame({"ImageId": ["a", "b", "c"], "share": ["0", "0", "0"]})
    validate_number_submission(pd.DataFrame({"ImageId": ["a", "b", "c"], "share": ["0.25", "1e-3", "-2"]}),
                               sample, "ImageId", "share")
    problems = number_submission_problems(pd.DataFrame({"ImageId": ["a", "c", "x"], "share": ["0.25", "inf", "big"]}),
                                          sample, "ImageId", "share")
    assert any("NaN or infinite" in p and "row(s) 2" in p for p in problems)
    assert any("not numbers" in p and "'big'" in p for p in problems) and any("'x'" in p for p in problems)
    with pytest.raises(PodiumError, match=r"not integer grades, e.g. 2.5 \(row 2\)"):
        validate_number_submission(pd.DataFrame({"ImageId": ["a", "b", "c"], "share": ["1", "2.5", "0"]}), sample,
                                   "ImageId", "share", integers=True)
    with pytest.raises(PodiumError, match="differ from the sample"):
        validate_number_submission(pd.DataFrame({"ImageId": ["a", "b", "c"], "value": ["1", "2", "0"]}), sample,
                                   "ImageId", "share")


# ---- the generated competitions --------------------------------------------------------------------
def test_generated_shares_are_seeded_and_their_grades_balanced():
    images, share = make_ellipse_shares(300, 32, seed=5)
    again, share_again = make_ellipse_shares(300, 32, seed=5)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(share, share_again)
    assert images.shape == (300, 32, 32, 3) and 0.005 < share.min() and share.max() < 0.6
    counts = np.bincount(share_grades(share), minlength=5)
    assert len(counts) == 5 and counts.min() >= 300 * 0.1, counts
    np.testing.assert_array_equal(share_grades(np.array(GRADE_EDGES)), [1, 2, 3, 4])
    for slug, metric, form in (("shapes-regression", "rmse", "number"), ("shapes-ordinal", "qwk", "number")):
        spec = load_competition(slug)
        assert spec.task == "regression" and spec.resolved_metric.name == metric
        assert spec.resolved_submission_format == form


def test_an_ordinal_package_carries_the_cuts_and_the_scale_make_predict_uses(tmp_path):
    """What the submission writer reads from the run folder (the target's scale, QWK cut points fitted out
    of fold) travels in the package; the kernel grades with those cuts, not with plain rounding."""
    from podium import tasks
    from podium.kaggle.inference import package_run, predict_from_package
    from tests_support import make_data

    cfg = load_config(ROOT / "configs" / "shapes-regression.yaml", {
        "data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"), "verbose": 0, "image_size": 32,
        "competition": "shapes-ordinal", "folds": [0], "tta": ["identity"]})
    make_data(cfg.competition, cfg.data_dir)
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 5).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text("{}")
    cuts = [-1e6, -1e6 + 1, -1e6 + 2, -1e6 + 3]  # every prediction lies above: grade 4 everywhere
    (cfg.run_dir / QWK_CUTS).write_text(json.dumps({"grades": [0, 1, 2, 3, 4], "cuts": cuts}))
    package = package_run(cfg, get_task(cfg.task), tmp_path / "package", "tester/shapes-run") / cfg.run_id
    assert json.loads((package / QWK_CUTS).read_text())["cuts"] == cuts
    scale = json.loads((package / TARGET_SCALE).read_text())
    labels = pd.read_csv(cfg.data_root / "train_grades.csv")
    assert scale["mean"] == pytest.approx(labels["grade"].mean()) and scale["sd"] == pytest.approx(labels["grade"].std(ddof=0))
    out = tmp_path / "submission.csv"
    predict_from_package(package, get_task(cfg.task), cfg.data_root, out, tmp_path / "scratch", log=lambda line: None)
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(submission.columns) == ["ImageId", "grade"] and set(submission["grade"]) == {"4"}


# ---- end to end ------------------------------------------------------------------------------------
def _train_and_predict(tmp_path, slug, grades):
    raw = write_share_competition(tmp_path / "raw" / slug, n_train=300, n_test=100, size=32, seed=7, grades=grades)
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0"]
    assert main(["run", "--config", str(ROOT / "configs" / "shapes-regression.yaml"), "--source", str(raw), *dirs,
                 f"competition={slug}", "image_size=32", "folds=[0,1]", "epochs=15",
                 "early_stopping_patience=15"]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    submission = pd.read_csv(next((tmp_path / "submissions" / slug).glob("*.csv")))
    return raw, run_dir, submission


@pytest.mark.slow
def test_regression_files_to_a_submission_that_beats_the_train_mean_by_far(tmp_path, capsys):
    raw, run_dir, submission = _train_and_predict(tmp_path, "shapes-regression", grades=False)
    out = capsys.readouterr().out
    assert "300 train images (60 in target quintile 1, 60 in target quintile 2," in out  # make data: the bins
    assert "predicted: numbers 100" in out
    truth = pd.read_csv(raw / "answers" / "test_shares.csv")
    train = pd.read_csv(raw / "train_shares.csv")
    assert submission["ImageId"].tolist() == truth["ImageId"].tolist()
    assert np.isfinite(submission["share"]).all()
    model = rmse(truth["share"], submission["share"])
    mean = rmse(truth["share"], np.full(len(truth), train["share"].mean()))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with capsys.disabled():
        print(f"\nregression held-back test RMSE {model:.4f} vs train mean {mean:.4f} ({model / mean:.2f}x); "
              f"CV RMSE {metrics['cv_tta_mean']:.4f}")
    assert model < 0.6 * mean, (model, mean)
    assert metrics["metric"] == "rmse" and metrics["direction"] == "min" and metrics["cv_tta_mean"] < 0.6 * metrics["extra"]["rmse_mean_predictor"]
    scale = json.loads((run_dir / TARGET_SCALE).read_text())
    assert scale["mean"] == pytest.approx(train["share"].mean(), rel=1e-5)
    oof = pd.read_parquet(run_dir / "fold-0" / "oof.parquet")
    assert {"id", "target", "prediction"} <= set(oof.columns)


@pytest.mark.slow
def test_ordinal_grades_from_out_of_fold_cuts_score_qwk_on_held_back_images(tmp_path):
    raw, run_dir, submission = _train_and_predict(tmp_path, "shapes-ordinal", grades=True)
    truth = pd.read_csv(raw / "answers" / "test_grades.csv")
    assert submission["ImageId"].tolist() == truth["ImageId"].tolist()
    assert set(submission["grade"]) <= {0, 1, 2, 3, 4} and submission["grade"].dtype.kind == "i"
    score = qwk(truth["grade"], submission["grade"])
    record = json.loads((run_dir / QWK_CUTS).read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"\nordinal held-back test QWK {score:.3f}; honest OOF QWK {metrics['qwk_oof']:.3f} (plain rounding "
          f"{metrics['qwk_rounded_oof']:.3f}); cuts {np.round(record['cuts'], 2).tolist()}")
    assert sorted(record["per_fold"]) == ["0", "1"] and record["per_fold"]["0"] != record["per_fold"]["1"]
    assert np.all(np.diff(record["cuts"]) > 0)
    assert score > 0.75 and metrics["qwk_oof"] > 0.75, (score, metrics["qwk_oof"])


def test_the_searchs_kappa_is_the_registrys_qwk():
    from podium.tasks.regression import _kappa

    rng = np.random.default_rng(3)
    grades = np.arange(5)
    weights = (grades[:, None] - grades[None, :]).astype(float) ** 2
    for _ in range(20):
        truth, predicted = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
        truth[:2], predicted[:2] = [0, 4], [4, 0]  # both ends present: the registry weighs over min..max
        assert _kappa(truth, predicted, weights) == pytest.approx(qwk(truth, predicted))
    assert _kappa(np.array([2, 2]), np.array([2, 2]), weights) == 0.0


def test_per_sample_scores_fall_with_the_error_in_standard_deviations():
    targets = np.array([0.0, 2.0, 4.0, 6.0])
    data = _data(targets)
    mean, sd = target_scale(targets)
    z = ((targets - mean) / sd).reshape(-1, 1)
    task = get_task("regression")
    np.testing.assert_allclose(task.target_values(data, z), targets, atol=1e-9)
    np.testing.assert_allclose(task.per_sample_scores(data, np.arange(4), z + [[0.0], [0.5], [1.0], [2.0]]),
                               [1.0, 0.5, 0.0, 0.0], atol=1e-9)
