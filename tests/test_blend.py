"""make blend: honest (per-fold) weight fitting on synthetic OOF arrays, and end to end on two real demo runs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.tasks import get_task
from podium.blend import (BlendRun, Objective, blend_oof, check_compatible, check_same_metric, combine,
                          fit_weights, load_blend_spec, rank_scaled, simplex_grid)
from podium.scoring.registry import resolve_metric
from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError

ROOT = Path(__file__).resolve().parents[1]


def _one_hot_noise(rng, n, c, signal_labels=None, strength=0.0):
    """Probabilities: Dirichlet noise, plus `strength` on the true class when labels are given."""
    probs = rng.dirichlet(np.ones(c), size=n)
    if signal_labels is not None:
        probs[np.arange(n), signal_labels] += strength
        probs /= probs.sum(1, keepdims=True)
    return probs


def test_simplex_grid_weights_are_non_negative_and_sum_to_one():
    for runs in (2, 3, 4, 6):
        grid = simplex_grid(runs)
        assert grid.shape[1] == runs and len(grid) > runs
        assert (grid >= 0).all() and np.allclose(grid.sum(1), 1.0)
        assert any(np.allclose(row, np.eye(runs)[0]) for row in grid)  # a single run alone is a candidate


def test_fitted_weights_prefer_the_informative_run():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    good = _one_hot_noise(rng, 400, 4, labels, strength=0.6)
    noise = _one_hot_noise(rng, 400, 4)
    w = fit_weights(np.stack([noise, good]), labels)
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert w[1] > w[0]


def test_in_sample_fitting_is_optimistic_and_the_honest_cv_is_not():
    """Three runs of pure noise: nothing to learn, chance is 1/3. Weights fitted on the rows they are scored
    on find the blend that happens to fit those rows; fitted on the other folds they cannot."""
    rng = np.random.default_rng(7)
    n, c = 150, 3
    labels = rng.integers(0, c, n)
    folds = np.arange(n) % 5
    stack = np.stack([_one_hot_noise(rng, n, c) for _ in range(3)])
    scores = blend_oof(stack, labels, folds, ["a", "b", "c"], "weights")
    assert scores.in_sample_mean > scores.cv_mean + 0.03
    assert abs(scores.cv_mean - 1 / c) < 0.06  # the honest estimate stays near chance
    for w in scores.fold_weights + [scores.weights]:
        assert min(w) >= 0 and sum(w) == pytest.approx(1.0)
    # fold weights differ from the all-rows weights: they were fitted on other rows
    assert any(not np.allclose(w, scores.weights) for w in scores.fold_weights)


def test_a_noise_run_gets_no_weight_when_accuracy_is_fitted_on_its_smooth_proxy():
    """Accuracy is a step function of the weights: fitted on it, a grid finds a share for a noise run that
    happens to flip a few rows. Fitted on its proxy (log loss), the noise run adds nothing and gets nothing;
    the CV is still reported in accuracy."""
    rng = np.random.default_rng(3)
    n, c = 200, 4
    labels = rng.integers(0, c, n)
    folds = np.arange(n) % 4
    good = _one_hot_noise(rng, n, c, labels, strength=0.25)
    noise = _one_hot_noise(rng, n, c)
    scores = blend_oof(np.stack([good, noise]), labels, folds, ["good", "noise"], "weights")
    assert scores.metric == "accuracy" and "log_loss" in scores.fitted_on and "proxy" in scores.fitted_on
    assert scores.weights == [1.0, 0.0]
    assert scores.cv_mean == pytest.approx(float(np.mean(scores.run_scores["good"])))
    assert scores.fold_scores == pytest.approx([float(np.mean(good[folds == k].argmax(1) == labels[folds == k]))
                                                for k in range(4)])


def test_a_log_loss_blend_is_fitted_on_log_loss_itself_and_scored_lower_is_better():
    """Two runs with the same argmax, one over-confident: accuracy cannot tell them apart, log loss can. A
    log-loss blend is fitted on log loss itself (direction min) and its CV is the per-fold log loss; an
    accuracy blend of the same runs fits the same proxy and reports accuracy."""
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(5)
    n, c = 300, 3
    labels = rng.integers(0, c, n)
    calibrated = _one_hot_noise(rng, n, c, labels, strength=0.4)
    overconfident = calibrated ** 6 / (calibrated ** 6).sum(1, keepdims=True)  # same argmax, far sharper
    folds = np.arange(n) % 3
    stack = np.stack([overconfident, calibrated])
    log_loss = Objective(resolve_metric("log_loss"), get_task("classification"))
    scores = blend_oof(stack, labels, folds, ["sharp", "calibrated"], "weights", log_loss)
    assert scores.metric == "log_loss" and scores.direction == "min" and "itself" in scores.fitted_on
    assert scores.weights[1] > scores.weights[0]
    for k, w, score in zip(scores.folds, scores.fold_weights, scores.fold_scores):
        held = folds == k
        assert score == pytest.approx(sk_log_loss(labels[held], combine(stack[:, held], w), labels=range(c)), rel=1e-6)
    assert scores.cv_mean < min(np.mean(v) for v in scores.run_scores.values()) + 1e-9  # lower is better
    assert np.mean(scores.in_sample_fit_scores) <= np.mean(scores.fit_scores) + 1e-9  # in-sample flatters
    accuracy = blend_oof(stack, labels, folds, ["sharp", "calibrated"], "weights")
    assert accuracy.weights == scores.weights and accuracy.direction == "max"
    assert accuracy.cv_mean == pytest.approx(np.mean([np.mean(calibrated[folds == k].argmax(1) == labels[folds == k])
                                                      for k in range(3)]))


def test_multilabel_blend_thresholds_are_chosen_on_the_fitting_rows_only():
    """F2 over samples (Planet): the blended sigmoids of fold k are thresholded at thresholds chosen on the
    other folds, so fold k's own rows never tune the thresholds that score them."""
    from podium.scoring.forms import from_label_probabilities
    from podium.tasks.multilabel import choose_thresholds

    rng = np.random.default_rng(6)
    n, c = 240, 3
    truth = (rng.random((n, c)) < 0.4).astype(int)
    runs = np.stack([np.clip(0.5 * truth + rng.random((n, c)) * 0.6, 0, 1) for _ in range(2)])
    folds = np.arange(n) % 3
    metric = resolve_metric({"name": "fbeta", "beta": 2, "average": "samples"})
    objective = Objective(metric, get_task("multilabel"))
    scores = blend_oof(runs, truth, folds, ["a", "b"], "weights", objective)
    assert "log_loss" in scores.fitted_on and scores.metric == metric.label
    for k, w, score in zip(scores.folds, scores.fold_weights, scores.fold_scores):
        held = folds == k
        chosen = choose_thresholds(truth[~held], combine(runs[:, ~held], w), metric)
        assert score == pytest.approx(metric(*from_label_probabilities(metric, truth[held],
                                                                       combine(runs[:, held], w), chosen)))
        own = choose_thresholds(truth[held], combine(runs[:, held], w), metric)
        tuned = metric(*from_label_probabilities(metric, truth[held], combine(runs[:, held], w), own))
        assert tuned >= score  # thresholds tuned on the scored rows would flatter it


def test_runs_scored_by_different_metrics_are_refused_naming_each_metric(tmp_path):
    ids, folds = [f"i{k}" for k in range(8)], [0, 0, 0, 0, 1, 1, 1, 1]
    data = {"split": "data/demo/folds.csv", "split_fingerprint": "abc"}
    first, second = _synthetic_run("r1", folds, ids, data), _synthetic_run("r2", folds, ids, data, seed=3)
    for run, metric in ((first, "log_loss"), (second, "accuracy")):
        (tmp_path / run.run_id).mkdir()
        (tmp_path / run.run_id / "metrics.json").write_text(json.dumps({"metric": metric}))
    with pytest.raises(PodiumError, match="different metrics") as caught:
        check_same_metric([first, second], tmp_path)
    assert "r1: log_loss" in caught.value.received and "r2: accuracy" in caught.value.received
    (tmp_path / "r2" / "metrics.json").write_text(json.dumps({"metric": "log_loss"}))
    assert check_same_metric([first, second], tmp_path).name == "log_loss"
    (tmp_path / "r1" / "metrics.json").unlink()  # no record: the spec's metric (the demo's accuracy)
    (tmp_path / "r2" / "metrics.json").write_text(json.dumps({"metric": "micro F1"}))  # an older run's word
    assert check_same_metric([first, second], tmp_path).name == "accuracy"


def test_mean_and_rank_need_no_fit_and_rank_uses_ranks():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 60)
    stack = np.stack([_one_hot_noise(rng, 60, 3, labels, 0.5), _one_hot_noise(rng, 60, 3, labels, 0.5)])
    folds = np.arange(60) % 3
    mean = blend_oof(stack, labels, folds, ["a", "b"], "mean")
    assert mean.weights == [0.5, 0.5] and mean.fold_scores == mean.in_sample_scores
    ranked = rank_scaled(np.array([[0.1], [0.9], [0.5]]))
    np.testing.assert_allclose(ranked[:, 0], [0.0, 1.0, 0.5])
    np.testing.assert_allclose(combine(stack, [0.5, 0.5], "rank"),
                               (rank_scaled(stack[0]) + rank_scaled(stack[1])) / 2)


def test_a_blend_spec_is_checked(tmp_path):
    with pytest.raises(PodiumError, match="at least two"):
        load_blend_spec(runs=["only-one"])
    with pytest.raises(PodiumError, match="Unknown blend method"):
        load_blend_spec(runs=["a", "b"], method="median")
    path = tmp_path / "blend.yaml"
    path.write_text("runs: [a, b]\nmethod: rank\nname: my-blend\n")
    spec = load_blend_spec(path)
    assert (spec.runs, spec.method, spec.label) == (["a", "b"], "rank", "my-blend")
    assert load_blend_spec(runs=["a", "b"]).label == load_blend_spec(runs=["b", "a"]).label  # order-free hash
    path.write_text("runs: [a, b]\nmetod: rank\n")
    with pytest.raises(PodiumError, match="unknown keys"):
        load_blend_spec(path)


def _synthetic_run(run_id, folds, ids, data, **cfg):
    oof = pd.DataFrame({"id": ids, "label": np.arange(len(ids)) % 2, "fold": folds,
                        "prob_a": 0.5, "prob_b": 0.5})
    return BlendRun(run_id, load_config(None, cfg), data, oof, ["a", "b"])


def test_runs_of_other_splits_competitions_or_folds_are_refused_naming_the_difference():
    ids, folds = [f"i{k}" for k in range(8)], [0, 0, 0, 0, 1, 1, 1, 1]
    data = {"split": "data/demo/folds.csv", "split_fingerprint": "abc"}
    first = _synthetic_run("r1", folds, ids, data)
    check_compatible([first, _synthetic_run("r2", folds, ids, data, seed=3)])
    cases = [(_synthetic_run("r2", folds, ids, {**data, "split_fingerprint": "xyz"}), "split content"),
             (_synthetic_run("r2", folds, ids, {**data, "split": "other.csv"}), "split file"),
             (_synthetic_run("r2", folds, ids, data, competition="cifar10"), "competition"),
             (_synthetic_run("r2", [0, 0, 0, 1, 1, 1, 1, 1], ids, data), "validation ids of fold 0"),
             (_synthetic_run("r2", [0] * 8, ids, data), "trained folds")]
    for other, what in cases:
        with pytest.raises(PodiumError, match=what) as caught:
            check_compatible([first, other])
        assert "r1" in caught.value.expected and "r2" in caught.value.received and caught.value.fix


# ----------------------------------------------------------------------------------- real demo runs
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two 2-epoch demo runs (folds 0 and 1, other seeds), trained and predicted, in a private folder."""
    from podium.workflow import make_split, predict_run, train_run
    from tests_support import make_data

    base = tmp_path_factory.mktemp("blend")
    make_data("demo", str(base / "data"))
    dirs = [f"data_dir={base / 'data'}", f"runs_dir={base / 'runs'}", f"submissions_dir={base / 'submissions'}"]
    ids = []
    for seed, name in ((1, "first"), (2, "second")):
        cfg = load_config(ROOT / "configs" / "demo.yaml", [*dirs, "epochs=2", "folds=[0,1]", f"seed={seed}",
                                                           "verbose=0", f"name={name}"])
        make_split(cfg)
        train_run(cfg, get_task(cfg.task), progress=False)
        predict_run(cfg, get_task(cfg.task), progress=False)
        ids.append(cfg.run_id)
    return base, ids


@pytest.mark.slow
def test_blend_two_real_runs_honestly_and_submit_it(two_runs, capsys):
    from podium.kaggle.submit import resolve_target, validate_file

    base, (first, second) = two_runs
    runs_dir = str(base / "runs")
    assert main(["blend", "--runs", f"{first} {second}", "--name", "pair", "--runs-dir", runs_dir]) == 0
    out = capsys.readouterr().out
    blend_dir = next((base / "runs").glob("blend-pair-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    weights = list(metrics["weights"].values())
    assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    assert metrics["cv_mean"] != metrics["in_sample_cv_mean"] or \
        any(f["weights"] != weights for f in metrics["folds"])  # the honest figure is not the in-sample one
    assert metrics["in_sample_cv_mean"] >= max(v["mean"] for v in metrics["run_oof_cv"].values()) - 1e-9
    assert 0.1 < metrics["cv_mean"] <= 1 and f"{metrics['cv_mean']:.4f}" in out
    for run_id in (first, second):
        assert run_id in out
    # recorded like a run: make submit RUN=<blend-id> finds its config, CV and validated submission
    target = resolve_target(run_id=blend_dir.name, runs_dir=runs_dir)
    assert target.cv == pytest.approx(metrics["cv_mean"])
    assert target.file == base / "submissions" / "demo" / f"{blend_dir.name}.csv"
    validate_file(target, get_task(target.competition.task))
    capsys.readouterr()
    assert main(["blend", "--runs", first, blend_dir.name, "--runs-dir", runs_dir]) == 2  # no blend of a blend
    assert "is a blend" in capsys.readouterr().err
    # mean blend of the same runs: equal weights; test predictions are the weighted mean of the runs'
    assert main(["blend", "--runs", first, second, "--method", "mean", "--runs-dir", runs_dir]) == 0
    mean_dir = next(p for p in (base / "runs").glob("blend-*") if p != blend_dir)
    expected = (np.load(base / "runs" / first / "test_predictions.npy") +
                np.load(base / "runs" / second / "test_predictions.npy")) / 2
    np.testing.assert_allclose(np.load(mean_dir / "test_predictions.npy"), expected, atol=1e-6)


def _restamp(path, companions=()):
    """A hand-made variant of a run's artefact, recorded as its writer would have (podium.artefacts)."""
    from podium import artefacts

    record = artefacts.read_record(path)
    artefacts.stamp(path, kind=record["kind"], images=record["images"], remake=record["remake"],
                    made_by=record["made_by"], folds=record["folds"], companions=companions)


@pytest.mark.slow
def test_blend_refuses_another_split_and_other_test_ids(two_runs, capsys):
    base, (first, second) = two_runs
    runs_dir = base / "runs"
    # a copy of the second run whose folds were cut differently (one image moved to another fold)
    moved = runs_dir / "moved-split"
    shutil.copytree(runs_dir / second, moved)
    oof_path = moved / "fold-0" / "oof.parquet"
    oof = pd.read_parquet(oof_path)
    taken = oof.iloc[:1].assign(fold=1)
    oof.iloc[1:].to_parquet(oof_path)
    other = pd.concat([pd.read_parquet(moved / "fold-1" / "oof.parquet"), taken])
    other.to_parquet(moved / "fold-1" / "oof.parquet")
    for fold in (0, 1):  # as a run trained on that split would have recorded them
        _restamp(moved / f"fold-{fold}" / "oof.parquet")
    assert main(["blend", "--runs", first, "moved-split", "--runs-dir", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert "validation ids of fold 0" in err and "moved-split" in err
    assert "Expected:" in err and "Received:" in err and "Fix:" in err
    # a copy whose split record names other split content
    resplit = runs_dir / "resplit"
    shutil.copytree(runs_dir / second, resplit)
    record = json.loads((resplit / "data.json").read_text())
    (resplit / "data.json").write_text(json.dumps({**record, "split_fingerprint": "0000"}))
    assert main(["blend", "--runs", first, "resplit", "--runs-dir", str(runs_dir)]) == 2
    assert "split content" in capsys.readouterr().err
    # a copy that predicted other test images
    retest = runs_dir / "retest"
    shutil.copytree(runs_dir / second, retest)
    ids = pd.read_csv(retest / "test_ids.csv", dtype=str)
    ids.loc[0, "id"] = "not-a-test-image"
    ids.to_csv(retest / "test_ids.csv", index=False)
    _restamp(retest / "test_predictions.npy", companions=[retest / "test_ids.csv"])
    assert main(["blend", "--runs", first, "retest", "--runs-dir", str(runs_dir)]) == 2
    assert "different test images" in capsys.readouterr().err
    # no test predictions at all
    (retest / "test_predictions.npy").unlink()
    assert main(["blend", "--runs", first, "retest", "--runs-dir", str(runs_dir)]) == 2
    assert "no saved test predictions" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("config", ["shapes-localization.yaml", "shapes-segmentation.yaml"])
def test_blend_boxes_and_masks_of_two_real_runs(tmp_path, config, capsys):
    """Localization (class probabilities + box coordinates) and segmentation (mask probabilities) runs are
    averaged output by output, scored by box IoU / Dice, and written by the task's own validated writer."""
    from podium.kaggle.submit import resolve_target, validate_file
    from podium.experiments.synthetic_files import write_shapes_competition

    raw = write_shapes_competition(tmp_path / "raw", n_train=120, n_test=20, size=64, file_size=(96, 80), seed=5,
                                   object_probability=1.0 if "localization" in config else 0.8)
    runs_dir = tmp_path / "runs"
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={runs_dir}", f"submissions_dir={tmp_path / 'subs'}",
            "verbose=0", "image_size=32", "epochs=2", "folds=[0,1]"]
    for seed in (1, 2):
        assert main(["run", "--config", str(ROOT / "configs" / config), "--source", str(raw), *dirs,
                     f"seed={seed}"]) == 0
    first, second = sorted(p.name for p in runs_dir.iterdir())
    assert (runs_dir / first / "fold-0" / "oof_outputs.npy").is_file()
    capsys.readouterr()
    assert main(["blend", "--runs", first, second, "--method", "rank", "--runs-dir", str(runs_dir)]) == 2
    assert "Rank averaging is for class probabilities" in capsys.readouterr().err
    assert main(["blend", "--runs", first, second, "--name", "pair", "--runs-dir", str(runs_dir)]) == 0
    from podium.scoring.run_metric import recorded_metric

    # what scored the runs (their metrics.json: box IoU -> the spec's mean_iou; dice), and so the blend
    metric = recorded_metric(runs_dir / first, load_config(runs_dir / first / "config.yaml"))[0].label
    assert metric in (("mean_iou",) if "localization" in config else ("dice", "airbus_f2"))
    blend_dir = next(runs_dir.glob("blend-pair-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"] == metric and 0 <= metrics["cv_mean"] <= 1
    w = np.array(list(metrics["weights"].values()))
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    # the blended test outputs are the weighted mean of the runs' (probabilities, coordinates, mask pixels)
    expected = sum(weight * np.load(runs_dir / run / "test_predictions.npy").astype("float64")
                   for weight, run in zip(w, (first, second)))
    np.testing.assert_allclose(np.load(blend_dir / "test_predictions.npy"), expected, atol=1e-5)
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    validate_file(target, get_task(target.competition.task))
