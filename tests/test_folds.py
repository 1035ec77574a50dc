import numpy as np
import pandas as pd
import pytest

from podium.data.folds import load_or_make_split, make_holdout, make_kfold
from podium.errors import PodiumError


def _index(n=300, classes=3, seed=0, duplicate_groups=0):
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n)]
    frame = pd.DataFrame({"id": ids, "split": "train", "ok": True,
                          "label": [f"c{k}" for k in rng.integers(0, classes, n)], "group": ids})
    for g in range(duplicate_groups):  # plant groups of 3 same-label near-duplicates
        rows = frame.index[frame["label"] == "c0"][3 * g:3 * g + 3]
        frame.loc[rows, "group"] = f"dup{g}"
    frame.loc[n - 1, "ok"] = False  # an unreadable image never enters a split
    test = pd.DataFrame({"id": ["t1"], "split": "test", "ok": True, "label": "", "group": "t1"})
    return pd.concat([frame, test], ignore_index=True)


def test_kfold_is_deterministic_stratified_and_complete():
    index = _index()
    a, b = make_kfold(index, 5, seed=1), make_kfold(index.sample(frac=1, random_state=3), 5, seed=1)
    pd.testing.assert_frame_equal(a, b)  # row order on disk does not matter
    assert set(a["id"]) == set(index[(index.split == "train") & index.ok]["id"])
    assert sorted(a["fold"].unique()) == [0, 1, 2, 3, 4]
    merged = a.merge(index, on="id")
    shares = merged.groupby("fold")["label"].value_counts(normalize=True).unstack()
    assert (shares.max() - shares.min()).max() < 0.1  # every fold has about the same class mix
    assert not make_kfold(index, 5, seed=2)["fold"].equals(a["fold"])


def test_duplicate_groups_never_span_folds():
    index = _index(duplicate_groups=10)
    for split in (make_kfold(index, 5, seed=0), make_holdout(index, 0.3, seed=0)):
        merged = split.merge(index, on="id")
        per_group = merged.groupby("group")["fold"].nunique()
        assert per_group.max() == 1
        assert (merged.groupby("group").size() == 3).sum() == 10  # the planted groups are all there


def test_holdout_share_and_determinism():
    index = _index(n=1000)
    split = make_holdout(index, 0.3, seed=4)
    assert split["fold"].eq(0).mean() == pytest.approx(0.3, abs=0.01)
    pd.testing.assert_frame_equal(split, make_holdout(index, 0.3, seed=4))


def test_saved_split_is_reused_and_a_stale_one_is_an_error(tmp_path):
    index = _index()
    first, path = load_or_make_split(index, tmp_path, 5, 0.0, 42)
    second, _ = load_or_make_split(index, tmp_path, 5, 0.0, 42)
    pd.testing.assert_frame_equal(first, second)
    grown = pd.concat([index, pd.DataFrame({"id": ["new"], "split": "train", "ok": True, "label": "c1",
                                            "group": "new"})], ignore_index=True)
    with pytest.raises(PodiumError, match="FORCE=1"):
        load_or_make_split(grown, tmp_path, 5, 0.0, 42)
    rebuilt, _ = load_or_make_split(grown, tmp_path, 5, 0.0, 42, force=True)
    assert "new" in set(rebuilt["id"])
