"""podium.blend.fit: weights on a simplex grid, fitted on the other folds' out-of-fold rows and scored on the
held-out fold, on generated probabilities where one run is clearly better than the others."""

import math

import numpy as np
import pytest

from podium.blend import fit
from podium.errors import PodiumError


def _runs(seed, n=300, classes=3, strengths=(0.0, 0.0, 2.0)):
    """(stack, labels, folds): one run per strength, Dirichlet noise plus `strength` on the true class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    stack = []
    for strength in strengths:
        probs = rng.dirichlet(np.ones(classes), size=n)
        probs[np.arange(n), labels] += strength
        stack.append(probs / probs.sum(1, keepdims=True))
    return np.stack(stack), labels, np.arange(n) % 3


def test_the_grid_gets_coarser_with_more_runs_and_stays_within_its_points():
    for runs in (2, 3, 5, 8):
        grid = fit.simplex_grid(runs)
        assert len(grid) <= fit.GRID_POINTS and np.allclose(grid.sum(1), 1) and (grid >= 0).all()
        steps = round(1 / min(grid[grid > 0]))
        assert len(grid) == math.comb(steps + runs - 1, runs - 1)  # every composition, each once
        assert len({tuple(row) for row in grid}) == len(grid)
    assert round(1 / min(fit.simplex_grid(2)[fit.simplex_grid(2) > 0])) == 20  # two runs: steps of 0.05
    assert len(fit.simplex_grid(3, max_points=10)) <= 10


def test_equally_good_runs_get_equal_weights_whatever_their_order():
    stack, labels, _ = _runs(1, strengths=(1.0,))
    twins = np.stack([stack[0], stack[0]])
    np.testing.assert_allclose(fit.fit_weights(twins, labels), [0.5, 0.5])  # a tie: nearest equal


def test_the_clearly_better_run_gets_the_most_weight_in_every_fold():
    stack, labels, folds = _runs(2)
    scores = fit.blend_oof(stack, labels, folds, ["noise1", "noise2", "good"], "weights")
    for weights in scores.fold_weights + [scores.weights]:
        assert weights[2] > 0.5 and weights[2] == max(weights) and sum(weights) == pytest.approx(1)
    assert scores.cv_mean >= max(np.mean(v) for v in scores.run_scores.values()) - 0.02
    assert np.mean(scores.run_scores["good"]) > np.mean(scores.run_scores["noise1"]) + 0.3


def test_each_fold_is_scored_with_weights_fitted_on_the_other_folds_only():
    stack, labels, folds = _runs(3, strengths=(0.3, 0.5, 0.4))
    scores = fit.blend_oof(stack, labels, folds, ["a", "b", "c"], "weights")
    objective = fit.default_objective()
    assert scores.folds == [0, 1, 2] and scores.metric == objective.metric.label
    for k, weights, score in zip(scores.folds, scores.fold_weights, scores.fold_scores):
        other, held = folds != k, folds == k
        np.testing.assert_allclose(weights, fit.fit_weights(stack[:, other], labels[other]))
        blended = fit.combine(stack[:, held], np.asarray(weights))
        assert score == pytest.approx(np.mean(blended.argmax(1) == labels[held]))
    honest = fit.honest_oof(stack, folds, scores, "weights")
    for k, weights in zip(scores.folds, scores.fold_weights):
        np.testing.assert_allclose(honest[folds == k], fit.combine(stack[:, folds == k], np.asarray(weights)))


def test_fitted_weights_need_two_folds_and_mean_needs_none():
    stack, labels, _ = _runs(4)
    one_fold = np.zeros(len(labels), dtype=int)
    with pytest.raises(PodiumError, match="at least two folds"):
        fit.blend_oof(stack, labels, one_fold, ["a", "b", "c"], "weights")
    mean = fit.blend_oof(stack, labels, one_fold, ["a", "b", "c"], "mean")
    assert mean.weights == pytest.approx([1 / 3] * 3) and mean.folds == [0]
    assert mean.fold_scores == mean.in_sample_scores  # nothing fitted: honest and in-sample agree


def test_a_step_metric_is_fitted_on_its_smooth_proxy():
    objective = fit.default_objective()
    assert objective.on_proxy and "smooth proxy of" in objective.fitted_on
    stack, labels, _ = _runs(5)
    # the proxy (log loss) is signed so that higher is better: the good run fits better than noise
    assert objective.fit_value(stack[2], labels) > objective.fit_value(stack[0], labels)
