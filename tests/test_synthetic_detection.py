"""The detection shapes: seeded, 0-8 shapes of three classes per image, of varied size, some partly over
others, each box its shape's; written as a Global Wheat-form competition at a non-square file size."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
from PIL import Image

from podium.experiments.synthetic import DETECTION_CLASSES, DETECTION_MAX_OBJECTS, make_detection_set
from podium.experiments.synthetic_files import DETECTION_COLUMNS, GENERATED, write_detection_competition


def test_same_seed_same_set_with_every_count_and_class_and_varied_sizes():
    images, boxes = make_detection_set(120, 96, seed=4)
    again, boxes_again = make_detection_set(120, 96, seed=4)
    np.testing.assert_array_equal(images, again)
    assert all(np.array_equal(a, b) for a, b in zip(boxes, boxes_again))
    assert not np.array_equal(make_detection_set(5, 96, seed=5)[0], images[:5])
    counts = np.array([len(b) for b in boxes])
    assert counts.min() == 0 and counts.max() <= DETECTION_MAX_OBJECTS and len(set(counts)) >= 7
    every = np.concatenate(boxes)
    assert set(every[:, 0].astype(int)) == {0, 1, 2}
    sides = np.maximum(every[:, 3] - every[:, 1], every[:, 4] - every[:, 2])
    assert 0.05 < sides.min() < 0.12 and 0.3 < sides.max() <= 0.45
    assert ((every[:, 1:3] >= 0) & (every[:, 3:] <= 1) & (every[:, 3:] > every[:, 1:3])).all()


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[3], b[3]) - max(a[1], b[1])
    height = min(a[4], b[4]) - max(a[2], b[2])
    return max(width, 0) * max(height, 0)


def test_some_boxes_overlap_and_each_box_holds_its_shape_not_the_background():
    images, boxes = make_detection_set(60, 96, seed=1)
    overlapping = sum(_overlap(a, b) > 0 for rows in boxes for i, a in enumerate(rows) for b in rows[i + 1:])
    assert overlapping >= 10
    for image, rows in zip(images, boxes):
        grey = (image.astype(int) - 127).__abs__().max(axis=-1) < 50  # the background's noisy grey
        for _, x1, y1, x2, y2 in rows:
            inside = grey[int(round(y1 * 96)):int(round(y2 * 96)), int(round(x1 * 96)):int(round(x2 * 96))]
            assert inside.mean() < 0.75  # a shape fills much of its box (a triangle about half)
            assert inside.size > 0


def test_the_competition_files_hold_every_box_in_pixels_of_the_stored_size(tmp_path):
    assert GENERATED["shapes-detection"]["file_size"] == (120, 96)
    out = write_detection_competition(tmp_path, n_train=20, n_test=6, size=64, file_size=(80, 64), seed=6)
    train = pd.read_csv(out / "train.csv")
    assert list(train.columns) == DETECTION_COLUMNS
    drawn = make_detection_set(20, 64, seed=12)[1]
    ids = [f"train-6-{i:05d}.png" for i in range(20)]
    assert set(train["image_id"]) == {i for i, rows in zip(ids, drawn) if len(rows)}  # no box: no row
    expected = np.concatenate([rows[:, 1:] * [80, 64, 80, 64] for rows in drawn])
    got = train[["x", "y", "w", "h"]].to_numpy()
    np.testing.assert_allclose(np.c_[got[:, :2], got[:, :2] + got[:, 2:]], expected, atol=0.01)
    assert train["class"].tolist() == [DETECTION_CLASSES[int(c)] for rows in drawn for c in rows[:, 0]]
    with zipfile.ZipFile(out / "train.zip") as archive:
        assert sorted(archive.namelist()) == [f"train/{i}" for i in ids]
        assert Image.open(io.BytesIO(archive.read(f"train/{ids[0]}"))).size == (80, 64)
    sample = pd.read_csv(out / "sample_submission.csv", keep_default_na=False)
    assert list(sample.columns) == ["image_id", "PredictionString"] and (sample["PredictionString"] == "").all()
    answers = pd.read_csv(out / "answers" / "test.csv")
    assert list(answers.columns) == DETECTION_COLUMNS and set(answers["image_id"]) <= set(sample["image_id"])
