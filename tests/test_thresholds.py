"""Per-class thresholds of multi-label runs chosen for the competition's label-set metric (fbeta with its beta and
averaging, micro_f1), against brute force over the candidate grid, with the honest per-fold figure recorded."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import fbeta_score

from podium.scoring.forms import label_sets
from podium.scoring.registry import resolve_metric
from podium.tasks.multilabel import CANDIDATES, THRESHOLDS, choose_thresholds, honest_threshold_scores, run_thresholds


def _data(seed, n=300, c=2):
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, c)) < 0.35).astype(int)
    probs = np.clip(0.35 * truth + rng.random((n, c)) * 0.65, 0, 1)  # positives only somewhat higher
    return truth, probs


def _score(metric, truth, probs, thresholds):
    return fbeta_score(truth, label_sets(probs, thresholds), beta=metric.kwargs["beta"],
                       average=metric.kwargs["average"], zero_division=1.0)


def test_macro_thresholds_reach_the_brute_force_optimum_and_samples_never_lose_to_the_start():
    truth, probs = _data(0)
    macro = resolve_metric({"name": "fbeta", "beta": 2, "average": "macro"})
    chosen = choose_thresholds(truth, probs, macro)
    best = max(_score(macro, truth, probs, np.array(t)) for t in itertools.product(CANDIDATES, repeat=2))
    assert _score(macro, truth, probs, chosen) == pytest.approx(best)
    samples = resolve_metric({"name": "fbeta", "beta": 2, "average": "samples"})
    tuned = choose_thresholds(truth, probs, samples)
    best = max(_score(samples, truth, probs, np.array(t)) for t in itertools.product(CANDIDATES, repeat=2))
    assert _score(samples, truth, probs, tuned) >= _score(samples, truth, probs, chosen) - 1e-12
    assert _score(samples, truth, probs, tuned) >= best - 0.01  # coordinate search lands at (or next to) the top


def test_f2_chooses_lower_thresholds_than_f1_because_it_weighs_recall():
    truth, probs = _data(1, c=3)
    f1 = choose_thresholds(truth, probs, resolve_metric("micro_f1"))
    f2_metric = resolve_metric({"name": "fbeta", "beta": 2, "average": "micro"})
    f2 = choose_thresholds(truth, probs, f2_metric)
    assert (f2 <= f1).all() and (f2 < f1).any()
    assert _score(f2_metric, truth, probs, f2) > _score(f2_metric, truth, probs, f1)
    assert (choose_thresholds(truth, probs, resolve_metric("mean_columnwise_auc")) == 0.5).all()  # no thresholds


def test_the_honest_figure_scores_each_fold_at_thresholds_of_the_other_folds(tmp_path):
    truth, probs = _data(2, n=240, c=3)
    folds = np.arange(240) % 3
    metric = resolve_metric({"name": "fbeta", "beta": 2, "average": "samples"})
    honest = honest_threshold_scores(truth, probs, folds, metric)
    for k in range(3):
        held = folds == k
        other = choose_thresholds(truth[~held], probs[~held], metric)
        assert honest[str(k)] == pytest.approx(_score(metric, truth[held], probs[held], other))
    classes = ["a", "b", "c"]
    for k in range(3):
        fold = tmp_path / f"fold-{k}"
        fold.mkdir()
        rows = folds == k
        frame = pd.DataFrame({"id": np.flatnonzero(rows).astype(str), "fold": k,
                              "label": [" ".join(c for c, on in zip(classes, row) if on) or "a" for row in truth[rows]]})
        for j, name in enumerate(classes):
            frame[f"prob_{name}"] = probs[rows, j]
        frame.to_parquet(fold / "oof.parquet")
        (fold / "metrics.json").write_text("{}")
    thresholds = run_thresholds(tmp_path, classes, metric)
    record = json.loads((tmp_path / THRESHOLDS).read_text())
    assert record["metric"] == metric.label and set(record["honest"]["folds"]) == {"0", "1", "2"}
    assert record["tuned_in_sample"] >= record["honest"]["cv_mean"] - 1e-12  # chosen on the scored rows
    assert record["tuned_in_sample"] >= record["at_half"]
    package = tmp_path / "package"  # an inference package: the saved thresholds, no OOF rows
    package.mkdir()
    (package / THRESHOLDS).write_text((tmp_path / THRESHOLDS).read_text())
    np.testing.assert_allclose(run_thresholds(package, classes, metric), thresholds)
