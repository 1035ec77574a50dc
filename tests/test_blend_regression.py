"""make blend of regression runs: the number per image (oof.parquet's TTA prediction, the target's units)
averaged and scored against oof.parquet's target; rmse/mae fitted as they are (lower is better), qwk fitted on
its rmse proxy and graded at cut points fitted on the other folds only; rank averaging and blends with other
tasks refused; the blend's folder carries the runs' common target scale (and QWK cuts) its writer reads."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.blend import BlendRun, Objective, blend_oof, check_compatible, simplex_grid
from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from podium.scoring.forms import to_grades
from podium.scoring.registry import qwk, resolve_metric, rmse
from podium.tasks import get_task
from podium.tasks.regression import QWK_CUTS, TARGET_SCALE, fit_cuts

ROOT = Path(__file__).resolve().parents[1]
REGRESSION = {"task": "regression", "competition": "shapes-regression", "monitor": "val_rmse", "mode": "min"}


def _best_on(stack, truth, rows, score, lower_is_better=True):
    """Brute force over the 2-run grid (steps of 1/20): the best weights on `rows`, ties nearest equal."""
    best_key, best = None, None
    for w in simplex_grid(2):
        value = score(truth[rows], (w[0] * stack[0] + w[1] * stack[1])[rows])
        key = (round(-value if lower_is_better else value, 12), -abs(w[0] - 0.5))
        if best_key is None or key > best_key:
            best_key, best = key, w
    return best


def _two_regressors(n=200, seed=0, grades=False):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n).astype(float) if grades else rng.normal(10.0, 3.0, n)
    if grades:  # squeezed toward the middle grade, as a regressor is: plain rounding misgrades the ends
        good = truth * 0.6 + 0.8 + rng.normal(0, 0.3, n)
        weak = truth + rng.normal(0, 0.9, n)
    else:
        good, weak = truth + rng.normal(0, 0.8, n), truth + rng.normal(0, 1.5, n)
    return truth, np.stack([good, weak])[..., None], np.arange(n) % 4


def test_rmse_blend_weights_are_fitted_lower_is_better_and_scored_on_the_other_folds():
    truth, stack, folds = _two_regressors()
    objective = Objective(resolve_metric("rmse"), get_task("regression"))
    scores = blend_oof(stack, truth, folds, ["good", "weak"], "weights", objective)
    assert scores.metric == "rmse" and scores.direction == "min" and "the metric itself" in scores.fitted_on
    values = stack[..., 0]
    for k, score, w in zip(scores.folds, scores.fold_scores, scores.fold_weights):
        held = folds == k
        expected_w = _best_on(values, truth, ~held, rmse)
        np.testing.assert_allclose(w, expected_w)
        assert score == pytest.approx(rmse(truth[held], (expected_w[0] * values[0] + expected_w[1] * values[1])[held]))
    np.testing.assert_allclose(scores.weights, _best_on(values, truth, np.ones(len(truth), bool), rmse))
    assert 0 < scores.weights[1] < scores.weights[0]  # both help, the better run more (lower rmse is better)
    assert scores.cv_mean < min(np.mean(v) for v in scores.run_scores.values())  # the two errors differ: a gain
    assert scores.run_scores["weak"][0] == pytest.approx(rmse(truth[folds == 0], values[1][folds == 0]))


def test_qwk_blend_fits_rmse_and_grades_each_fold_at_cuts_fitted_on_the_other_folds():
    truth, stack, folds = _two_regressors(grades=True, seed=1)
    objective = Objective(resolve_metric("qwk"), get_task("regression"))
    scores = blend_oof(stack, truth, folds, ["good", "weak"], "weights", objective)
    assert scores.metric == "qwk" and scores.direction == "max" and scores.fitted_on.startswith("rmse (smooth proxy")
    values, grades = stack[..., 0], np.arange(5)
    for k, score, w in zip(scores.folds, scores.fold_scores, scores.fold_weights):
        held = folds == k
        expected_w = _best_on(values, truth, ~held, rmse)  # the proxy, on the other folds
        np.testing.assert_allclose(w, expected_w)
        blended = expected_w[0] * values[0] + expected_w[1] * values[1]
        cuts = fit_cuts(truth[~held].astype(int), blended[~held], grades)  # never this fold's truth
        assert score == pytest.approx(qwk(truth[held].astype(int), to_grades(blended[held], cuts, grades)))
    # the good run alone: squeezed numbers that plain rounding misgrades, cut honestly
    held = folds == 0
    cuts = fit_cuts(truth[~held].astype(int), values[0][~held], grades)
    assert scores.run_scores["good"][0] == pytest.approx(qwk(truth[held].astype(int), to_grades(values[0][held], cuts, grades)))
    assert 0.5 < scores.cv_mean <= 1


def test_regression_reads_its_numbers_and_truth_from_oof_parquet_and_refuses_other_tasks():
    ids, folds = [f"i{k}" for k in range(6)], [0, 0, 0, 1, 1, 1]
    data = {"split": "data/shapes-regression/folds.csv", "split_fingerprint": "abc"}
    oof = pd.DataFrame({"id": ids, "fold": folds, "label": ["q1", "q2", "q3", "q4", "q5", "q1"],
                        "target": [0.1, 0.2, 0.3, 0.4, 0.5, 0.05], "prediction": [0.2, 0.2, 0.2, 0.3, 0.4, 0.1]})
    task = get_task("regression")
    values, truth = task.blend_oof(oof)
    run = BlendRun("reg", load_config(None, REGRESSION), data, oof, [], None, task.blend_oof(oof))
    assert not run.class_probabilities and run.probs.shape == (6, 1)
    np.testing.assert_array_equal(run.probs[:, 0], oof["prediction"])
    np.testing.assert_array_equal(truth, oof["target"])  # not the quintile bins of `label`
    check_compatible([run, BlendRun("reg2", load_config(None, {**REGRESSION, "seed": 3}), data, oof, [], None,
                                    task.blend_oof(oof))])
    moved = oof.assign(target=oof["target"] + 1.0)
    with pytest.raises(PodiumError, match="OOF targets"):
        check_compatible([run, BlendRun("reg3", load_config(None, REGRESSION), data, moved, [], None,
                                        task.blend_oof(moved))])
    classified = oof.assign(prob_q1=0.5, prob_q2=0.5).drop(columns=["target", "prediction"])
    other = BlendRun("cls", load_config(None, {"competition": "shapes-regression"}), data, classified, ["q1", "q2"])
    with pytest.raises(PodiumError, match="differ in task") as caught:
        check_compatible([run, other])
    assert "regression" in caught.value.expected and "classification" in caught.value.received


# ---------------------------------------------------------------------------------- two real runs
def _train_two(base: Path, slug: str, grades: bool):
    """Two 8-epoch runs of a generated share competition (120 images at 32 px, folds 0 and 1 of 3, seeds 1
    and 2), trained and predicted, in a private folder."""
    from podium.experiments.synthetic_files import write_share_competition

    raw = write_share_competition(base / "raw" / slug, n_train=120, n_test=20, size=32, seed=7, grades=grades)
    dirs = [f"data_dir={base / 'data'}", f"runs_dir={base / 'runs'}", f"submissions_dir={base / 'submissions'}",
            "verbose=0", "image_size=32", "epochs=8", "folds=[0,1]", "n_folds=3", f"competition={slug}"]
    for seed in (1, 2):
        assert main(["run", "--config", str(ROOT / "configs" / "shapes-regression.yaml"), "--source", str(raw),
                     *dirs, f"seed={seed}"]) == 0
    return base, sorted(p.name for p in (base / "runs").iterdir())


@pytest.fixture(scope="module")
def two_regression_runs(tmp_path_factory):
    return _train_two(tmp_path_factory.mktemp("regblend"), "shapes-regression", grades=False)


@pytest.fixture(scope="module")
def two_ordinal_runs(tmp_path_factory):
    return _train_two(tmp_path_factory.mktemp("ordblend"), "shapes-ordinal", grades=True)


def _saved_oof(run_dir: Path, folds=(0, 1)) -> pd.DataFrame:
    oof = pd.concat([pd.read_parquet(run_dir / f"fold-{k}" / "oof.parquet") for k in folds], ignore_index=True)
    return oof.assign(id=oof["id"].astype(str)).sort_values("id", kind="stable").reset_index(drop=True)


@pytest.mark.slow
def test_blend_two_regression_runs_honestly_and_submit_the_numbers(two_regression_runs, capsys):
    from podium.kaggle.submit import resolve_target, validate_file

    base, (first, second) = two_regression_runs
    runs_dir = base / "runs"
    capsys.readouterr()
    assert main(["blend", "--runs", first, second, "--method", "rank", "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert "Rank averaging is for class probabilities, not regression outputs" in err and "method=weights" in err
    assert main(["blend", "--runs", first, second, "--name", "pair", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "metric: rmse (lower is better); weights fitted on rmse (the metric itself)" in out
    blend_dir = next(runs_dir.glob("blend-pair-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"] == "rmse" and metrics["direction"] == "min" and metrics["task"] == "regression"

    # the honest CV recomputed by hand from the saved OOF rows: each fold's weights the best on the other fold
    a, b = _saved_oof(runs_dir / first), _saved_oof(runs_dir / second)
    assert a["id"].tolist() == b["id"].tolist()
    truth, folds = a["target"].to_numpy(), a["fold"].to_numpy()
    values = np.stack([a["prediction"].to_numpy(), b["prediction"].to_numpy()])
    by_hand = []
    for record in metrics["folds"]:
        held = folds == record["fold"]
        w = _best_on(values, truth, ~held, rmse)
        np.testing.assert_allclose(record["weights"], w)
        by_hand.append(rmse(truth[held], (w[0] * values[0] + w[1] * values[1])[held]))
        assert record["score"] == pytest.approx(by_hand[-1])
    assert metrics["cv_mean"] == pytest.approx(np.mean(by_hand)) and metrics["cv_std"] == pytest.approx(np.std(by_hand))
    for run_id, oof in ((first, a), (second, b)):
        assert metrics["run_oof_cv"][run_id]["mean"] == pytest.approx(
            np.mean([rmse(truth[folds == k], oof["prediction"][folds == k]) for k in (0, 1)]))
    w = np.array(list(metrics["weights"].values()))
    np.testing.assert_allclose(w, _best_on(values, truth, np.ones(len(truth), bool), rmse))

    # the test numbers: the weighted mean of the runs' standardised outputs, written in the target's units
    scale = json.loads((blend_dir / TARGET_SCALE).read_text())
    assert scale["mean"] == json.loads((runs_dir / first / TARGET_SCALE).read_text())["mean"]
    assert metrics["target_scale"] == {"mean": scale["mean"], "sd": scale["sd"]}
    expected = sum(weight * np.load(runs_dir / run / "test_predictions.npy").astype("float64")
                   for weight, run in zip(w, (first, second)))
    np.testing.assert_allclose(np.load(blend_dir / "test_predictions.npy"), expected, atol=1e-5)
    submission = pd.read_csv(base / "submissions" / "shapes-regression" / f"{blend_dir.name}.csv")
    np.testing.assert_allclose(submission["share"], expected[:, 0] * scale["sd"] + scale["mean"], rtol=1e-5, atol=1e-6)
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    assert target.cv == pytest.approx(metrics["cv_mean"])
    validate_file(target, get_task(target.competition.task))
    with capsys.disabled():
        print(f"\nregression blend: runs {[round(metrics['run_oof_cv'][r]['mean'], 4) for r in (first, second)]}, "
              f"weights {w.round(2).tolist()}, honest CV RMSE {metrics['cv_mean']:.4f} +/- {metrics['cv_std']:.4f}, "
              f"in-sample {metrics['in_sample_cv_mean']:.4f}")

    # a run standardised by another target scale is refused before anything is written
    import shutil

    rescaled = runs_dir / "rescaled"
    shutil.copytree(runs_dir / second, rescaled)
    (rescaled / TARGET_SCALE).write_text(json.dumps({**scale, "sd": scale["sd"] * 2}))
    assert main(["blend", "--runs", first, "rescaled", "--runs-dir", str(runs_dir)]) == 2
    assert "different target scales" in capsys.readouterr().err
    shutil.rmtree(rescaled)
    # a regression run with a classification run: refused naming the tasks
    real = __import__("podium.blend", fromlist=["load_run"]).load_run(first, get_task("regression"), runs_dir)
    classified = real.oof.assign(prob_q1=0.5).drop(columns=["target", "prediction"])
    other = BlendRun("cls", load_config(None, {"competition": "shapes-regression"}), real.data, classified, ["q1"])
    with pytest.raises(PodiumError, match="differ in task"):
        check_compatible([real, other])


def test_the_blends_folder_gets_the_runs_common_scale_and_qwk_cuts_fitted_on_its_blended_rows(tmp_path):
    task = get_task("regression")
    runs = [tmp_path / "r1", tmp_path / "r2"]
    for run_dir in runs:
        run_dir.mkdir()
        (run_dir / TARGET_SCALE).write_text(json.dumps({"mean": 2.0, "sd": 1.25, "chosen_on": "the targets of 9"}))
    blend_dir = tmp_path / "blend"
    blend_dir.mkdir()
    truth, stack, folds = _two_regressors(grades=True, seed=2)
    blended = stack.mean(axis=0)
    recorded = task.blend_files(runs, blend_dir, resolve_metric("qwk"), truth, blended, folds)
    assert recorded["target_scale"] == {"mean": 2.0, "sd": 1.25}
    assert json.loads((blend_dir / TARGET_SCALE).read_text())["runs"] == ["r1", "r2"]
    cuts = json.loads((blend_dir / QWK_CUTS).read_text())
    np.testing.assert_allclose(cuts["cuts"], fit_cuts(truth.astype(int), blended[:, 0], np.arange(5)))
    assert recorded["qwk_cuts"] == cuts["cuts"] and sorted(cuts["per_fold"]) == ["0", "1", "2", "3"]
    rmse_dir = tmp_path / "rmse-blend"
    rmse_dir.mkdir()
    task.blend_files(runs, rmse_dir, resolve_metric("rmse"), truth, blended, folds)
    assert not (rmse_dir / QWK_CUTS).exists()  # rmse writes the numbers as they are
    (runs[1] / TARGET_SCALE).write_text(json.dumps({"mean": 2.0, "sd": 2.5}))
    with pytest.raises(PodiumError, match="different target scales") as caught:
        task.blend_files(runs, blend_dir, resolve_metric("rmse"), truth, blended, folds)
    assert "sd 1.25" in caught.value.expected and "sd 2.5" in caught.value.received
    (runs[1] / TARGET_SCALE).unlink()
    with pytest.raises(PodiumError, match="has no target_scale.json"):
        task.blend_files(runs, blend_dir, resolve_metric("rmse"), truth, blended, folds)


@pytest.mark.slow
def test_blend_two_ordinal_runs_scores_honest_qwk_and_writes_grades_at_its_own_cuts(two_ordinal_runs, capsys):
    from podium.kaggle.submit import resolve_target, validate_file

    base, (first, second) = two_ordinal_runs
    runs_dir = base / "runs"
    capsys.readouterr()
    assert main(["blend", "--runs", first, second, "--name", "grades", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "metric: qwk (higher is better); weights fitted on rmse (smooth proxy of qwk" in out
    blend_dir = next(runs_dir.glob("blend-grades-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"] == "qwk" and metrics["direction"] == "max"
    a, b = _saved_oof(runs_dir / first), _saved_oof(runs_dir / second)
    truth, folds = a["target"].to_numpy().astype(int), a["fold"].to_numpy()
    values, grades = np.stack([a["prediction"].to_numpy(), b["prediction"].to_numpy()]), np.arange(5)
    by_hand = []
    for record in metrics["folds"]:  # weights on the proxy, cuts on the other fold's blended rows
        held = folds == record["fold"]
        w = _best_on(values, truth.astype(float), ~held, rmse)
        np.testing.assert_allclose(record["weights"], w)
        blended = w[0] * values[0] + w[1] * values[1]
        cuts = fit_cuts(truth[~held], blended[~held], grades)
        by_hand.append(qwk(truth[held], to_grades(blended[held], cuts, grades)))
        assert record["score"] == pytest.approx(by_hand[-1])
    assert metrics["cv_mean"] == pytest.approx(np.mean(by_hand))
    # the final cuts: fitted on every OOF row blended with the final weights; they grade the test numbers
    w = np.array(list(metrics["weights"].values()))
    final = w[0] * values[0] + w[1] * values[1]
    saved = json.loads((blend_dir / QWK_CUTS).read_text())
    np.testing.assert_allclose(saved["cuts"], fit_cuts(truth, final, grades))
    scale = json.loads((blend_dir / TARGET_SCALE).read_text())
    test_numbers = np.load(blend_dir / "test_predictions.npy")[:, 0] * scale["sd"] + scale["mean"]
    submission = pd.read_csv(base / "submissions" / "shapes-ordinal" / f"{blend_dir.name}.csv")
    assert submission["grade"].dtype.kind == "i"
    np.testing.assert_array_equal(submission["grade"], to_grades(test_numbers, saved["cuts"], grades))
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    validate_file(target, get_task(target.competition.task))
    with capsys.disabled():
        print(f"\nordinal blend: runs {[round(metrics['run_oof_cv'][r]['mean'], 4) for r in (first, second)]}, "
              f"weights {w.round(2).tolist()}, honest CV QWK {metrics['cv_mean']:.4f} +/- {metrics['cv_std']:.4f}, "
              f"in-sample {metrics['in_sample_cv_mean']:.4f}")
