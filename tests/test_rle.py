"""RLE in Kaggle's convention: hand-worked runs, a round trip over many random masks, Airbus rows."""

import numpy as np
import pandas as pd
import pytest

from podium.data import rle
from podium.errors import PodiumError


def test_encoder_matches_runs_worked_out_by_hand():
    # Column-major numbering of a 3x3 image:   1 4 7      mask  1 1 0
    #                                           2 5 8            0 0 0
    #                                           3 6 9            0 0 1
    # set pixels are 1, 4 and 9: three runs of one ("1 2 9 1" would be the row-major mistake)
    mask = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]])
    assert rle.encode(mask) == "1 1 4 1 9 1"
    # 2 rows x 4 columns: column by column the pixels read 0 0 | 0 1 | 1 1 | 1 0 -> one run from 4, length 4
    wide = np.array([[0, 0, 1, 1], [0, 1, 1, 0]])
    assert rle.encode(wide) == "4 4"
    np.testing.assert_array_equal(rle.decode("4 4", (2, 4)), wide)


def test_empty_and_full_masks():
    assert rle.encode(np.zeros((5, 7))) == ""
    assert rle.encode(np.ones((5, 7))) == "1 35"
    for empty in ("", None, float("nan"), "  "):
        assert rle.decode(empty, (5, 7)).sum() == 0


def test_round_trip_over_many_random_masks():
    rng = np.random.default_rng(1234)
    for _ in range(300):
        height, width = rng.integers(1, 40, size=2)
        density = rng.choice([0.0, 0.02, 0.3, 0.7, 0.98, 1.0])
        mask = (rng.random((height, width)) < density).astype(np.uint8)
        text = rle.encode(mask)
        np.testing.assert_array_equal(rle.decode(text, (height, width)), mask)
        numbers = np.array(text.split(), dtype=int).reshape(-1, 2) if text else np.zeros((0, 2), int)
        assert numbers[:, 1].sum() == mask.sum()
        assert (numbers[:, 1] >= 1).all()
        # runs are maximal: each starts after the previous one ended plus at least one gap pixel
        assert (numbers[1:, 0] > numbers[:-1, 0] + numbers[:-1, 1]).all()


def test_one_row_per_object_and_an_empty_row():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:3] = 1  # 6 pixels
    mask[5:8, 5:7] = 1  # 6 pixels
    mask[3, 3] = 1  # touches neither: a third object
    rows = rle.object_rows("a.jpg", mask)
    assert len(rows) == 3 and all(image_id == "a.jpg" for image_id, _ in rows)
    objects = [rle.decode(text, (8, 8)) for _, text in rows]
    np.testing.assert_array_equal(np.sum(objects, axis=0), mask)  # disjoint, and together the whole mask
    assert rle.object_rows("a.jpg", mask, min_pixels=2).__len__() == 2
    assert rle.object_rows("b.jpg", np.zeros((8, 8))) == [("b.jpg", "")]


def test_diagonal_neighbours_are_one_object():
    mask = np.eye(4, dtype=np.uint8)
    assert len(rle.split_objects(mask)) == 1


def test_submission_frame_and_union_from_rows():
    masks = [np.zeros((6, 6), np.uint8), np.zeros((6, 6), np.uint8)]
    masks[1][0, 0] = masks[1][4:6, 4:6] = 1
    frame = rle.submission_frame(["x", "y"], masks)
    assert list(frame.columns) == ["ImageId", "EncodedPixels"]
    assert frame["ImageId"].tolist() == ["x", "y", "y"]
    union = rle.image_mask(frame.loc[frame.ImageId == "y", "EncodedPixels"], (6, 6))
    np.testing.assert_array_equal(union, masks[1])
    csv_like = pd.read_csv(pd.io.common.StringIO(frame.to_csv(index=False)))  # "" comes back as NaN
    assert rle.image_mask(csv_like.loc[csv_like.ImageId == "x", "EncodedPixels"], (6, 6)).sum() == 0


@pytest.mark.parametrize("bad", ["1 2 3", "0 2", "1 0", "30 10", "a b"])
def test_malformed_run_lengths_are_refused(bad):
    with pytest.raises(PodiumError):
        rle.decode(bad, (5, 5))
