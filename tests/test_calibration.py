"""Temperature scaling (podium.scoring.calibration): the scaling against scipy's softmax, the fitted T against a
dense grid, the honest per-fold T, the gain on over-confident synthetic logits, and the run-folder record."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.metrics import log_loss as sk_log_loss

from podium.errors import PodiumError
from podium.scoring.calibration import (CALIBRATION, applies, calibrate, fit_temperature, fold_temperatures,
                                        load_calibration, nll, run_calibration, scale)
from podium.scoring.registry import resolve_metric


def _overconfident(rng, n, c, sharpen=3.0, accuracy_noise=1.5):
    """Labels and softmax rows of logits that know something, then multiplied by `sharpen` (over-confident)."""
    labels = rng.integers(0, c, n)
    logits = rng.normal(0, accuracy_noise, (n, c))
    logits[np.arange(n), labels] += 1.5
    return labels, softmax(sharpen * logits, axis=1)


def test_scaling_is_a_softmax_of_log_probabilities_over_t():
    probs = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9], [1 / 3, 1 / 3, 1 / 3]])
    for t in (0.5, 1.0, 2.0, 7.0):
        np.testing.assert_allclose(scale(probs, t), softmax(np.log(probs) / t, axis=1), rtol=1e-12)
    np.testing.assert_allclose(scale(probs, 1.0), probs, rtol=1e-12)
    assert (scale(probs, 3.0).argmax(1) == probs.argmax(1)).all()  # the argmax never moves
    # binary, by hand: P(positive) = p^(1/T) / (p^(1/T) + (1-p)^(1/T)); p=0.9, T=2 -> 3 / 4
    np.testing.assert_allclose(scale(np.array([[0.1, 0.9]]), 2.0)[0, 1], 0.75, rtol=1e-12)


def test_fitted_temperature_is_the_minimum_of_the_log_loss():
    rng = np.random.default_rng(0)
    labels, probs = _overconfident(rng, 400, 4)
    t = fit_temperature(labels, probs)
    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 4001))
    losses = [nll(labels, scale(probs, g)) for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(losses))], rel=2e-3)
    assert nll(labels, probs) == pytest.approx(sk_log_loss(labels, probs, labels=range(4)), rel=1e-9)
    with pytest.raises(PodiumError, match="out-of-fold rows"):
        fit_temperature(np.array([], int), np.zeros((0, 4)))


def test_a_temperature_improves_the_log_loss_of_overconfident_logits_honestly():
    rng = np.random.default_rng(1)
    labels, probs = _overconfident(rng, 600, 3, sharpen=4.0)
    folds = np.arange(600) % 5
    metric = resolve_metric("log_loss")
    result = calibrate(metric, labels, probs, folds, ["a", "b", "c"])
    assert result.temperature > 2  # over-confident: softened
    assert result.after["cv_mean"] < result.before["cv_mean"] - 0.1
    for k in map(str, range(5)):  # every fold, scored with a T it never saw, is better
        assert result.after["folds"][k] < result.before["folds"][k]
    assert result.before["cv_mean"] == pytest.approx(
        np.mean([sk_log_loss(labels[folds == k], probs[folds == k], labels=range(3)) for k in range(5)]), rel=1e-6)
    # already calibrated probabilities: T stays near 1 and the honest CV barely moves
    labels, honest = _overconfident(rng, 3000, 3, sharpen=1.0)
    sampled = np.array([rng.choice(3, p=row) for row in honest])
    assert fit_temperature(sampled, honest) == pytest.approx(1.0, abs=0.1)


def test_a_folds_temperature_does_not_depend_on_its_own_rows():
    rng = np.random.default_rng(2)
    labels, probs = _overconfident(rng, 300, 3)
    folds = np.arange(300) % 3
    before = fold_temperatures(labels, probs, folds)
    perturbed = probs.copy()
    held = folds == 1
    perturbed[held] = softmax(5 * np.log(probs[held]), axis=1)  # fold 1's rows made far more over-confident
    after = fold_temperatures(labels, perturbed, folds)
    assert after[1] == pytest.approx(before[1], rel=1e-9)  # fitted on folds 0 and 2 only
    assert after[0] != pytest.approx(before[0], rel=1e-3) and after[2] != pytest.approx(before[2], rel=1e-3)
    with pytest.raises(PodiumError, match="at least two folds"):
        fold_temperatures(labels, probs, np.zeros(300, int))


def test_binary_log_loss_on_p_positive_is_calibrated_on_the_two_columns():
    rng = np.random.default_rng(3)
    labels, probs = _overconfident(rng, 400, 2, sharpen=5.0)
    metric = resolve_metric("log_loss")
    result = calibrate(metric, labels, probs, np.arange(400) % 4, ["cat", "dog"], positive=1)
    p_dog = scale(probs, result.temperature)[:, 1]
    assert result.in_sample_after == pytest.approx(sk_log_loss(labels, p_dog), rel=1e-6)
    assert result.after["cv_mean"] < result.before["cv_mean"]


def test_which_metrics_are_calibrated():
    assert applies(resolve_metric("log_loss"), "classification")
    for name in ("accuracy", "roc_auc", "mean_columnwise_auc", "macro_f1", "map_at_k(k=3)", "qwk"):
        assert not applies(resolve_metric(name), "classification"), name
    assert not applies(resolve_metric("log_loss"), "multilabel")


def test_the_run_folder_record_is_fitted_on_finished_folds_and_read_back_without_them(tmp_path):
    rng = np.random.default_rng(4)
    labels, probs = _overconfident(rng, 200, 2, sharpen=4.0)
    for k in (0, 1):
        rows = np.arange(200) % 2 == k
        fold = tmp_path / "run" / f"fold-{k}"
        fold.mkdir(parents=True)
        pd.DataFrame({"id": np.arange(200)[rows].astype(str), "label": labels[rows], "fold": k,
                      "prob_cat": probs[rows, 0], "prob_dog": probs[rows, 1]}).to_parquet(fold / "oof.parquet")
        (fold / "metrics.json").write_text("{}")
    metric = resolve_metric("log_loss")
    assert run_calibration(tmp_path / "run", resolve_metric("accuracy"), "classification", ["cat", "dog"]) is None
    fitted = run_calibration(tmp_path / "run", metric, "classification", ["cat", "dog"])
    saved = json.loads((tmp_path / "run" / CALIBRATION).read_text())
    assert saved["temperature"] == pytest.approx(fitted.temperature) and set(saved["fold_temperatures"]) == {"0", "1"}
    assert saved["metric"] == "log_loss" and saved["after"]["cv_mean"] < saved["before"]["cv_mean"]
    package = tmp_path / "package"  # an inference package: the file, no OOF rows
    package.mkdir()
    (package / CALIBRATION).write_text((tmp_path / "run" / CALIBRATION).read_text())
    again = run_calibration(package, metric, "classification", ["cat", "dog"])
    np.testing.assert_allclose(again.apply(probs), fitted.apply(probs), rtol=1e-6)
    with pytest.raises(PodiumError, match="other classes"):
        load_calibration(package, ["dog", "cat"])
    assert run_calibration(tmp_path / "nothing", metric, "classification", ["cat", "dog"]) is None


def test_a_temperature_the_honest_cv_does_not_confirm_is_recorded_but_not_applied():
    rng = np.random.default_rng(8)
    labels, probs = _overconfident(rng, 300, 3, sharpen=4.0)
    metric = resolve_metric("log_loss")
    helped = calibrate(metric, labels, probs, np.arange(300) % 3, ["a", "b", "c"])
    assert helped.applied and "calibrated (temperature" in helped.summary()
    np.testing.assert_allclose(helped.apply(probs), scale(probs, helped.temperature), rtol=1e-5)
    # the same T, but the folds' honest scores say it hurts: the test probabilities stay raw
    refused = calibrate(metric, labels, probs, np.arange(300) % 3, ["a", "b", "c"])
    refused.after = {**refused.after, "cv_mean": refused.before["cv_mean"] + 0.01}
    refused.applied = metric.better(refused.after["cv_mean"], refused.before["cv_mean"])
    assert not refused.applied and refused.summary().startswith("not calibrated")
    np.testing.assert_allclose(refused.apply(probs), probs.astype("float32"))
