"""The ellipse-and-rectangle generator: seeded, the mask is the ellipse alone, the distractor never touches it."""

import numpy as np

from podium.data.rle import split_objects
from podium.experiments.synthetic import make_class_masks, make_shapes


def test_same_seed_same_set_and_other_seed_other_set():
    a, b, c = make_shapes(20, 48, seed=3), make_shapes(20, 48, seed=3), make_shapes(20, 48, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)


def test_mask_is_one_ellipse_and_the_box_encloses_it():
    shapes = make_shapes(30, 64, seed=5)
    for mask, box in zip(shapes.masks[..., 0], shapes.boxes):
        assert len(split_objects(mask)) == 1
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(box, [xs.min() / 64, ys.min() / 64, (xs.max() + 1) / 64, (ys.max() + 1) / 64])


def test_distractor_has_the_objects_colour_range_but_is_not_in_the_mask():
    shapes = make_shapes(40, 64, seed=6)
    for image, mask, bright in zip(shapes.images, shapes.masks[..., 0], shapes.bright):
        ellipse_mean = image[mask > 0].mean()
        sea_mean = image[mask == 0].mean()  # the rectangle is counted as sea here, pulling it toward objects
        assert (ellipse_mean > sea_mean) == bool(bright)


def test_object_probability_gives_empty_masks():
    shapes = make_shapes(200, 32, seed=7, object_probability=0.5)
    empty = shapes.masks.reshape(200, -1).sum(1) == 0
    np.testing.assert_array_equal(empty, shapes.has_object == 0)
    assert 70 < empty.sum() < 130
    assert (shapes.boxes[empty] == 0).all()


def test_class_masks_hold_two_classes_apart_and_some_images_neither():
    images, masks = make_class_masks(60, 64, seed=3)
    assert images.shape == (60, 64, 64, 3) and masks.shape == (60, 64, 64, 2) and masks.dtype == np.uint8
    present = masks.reshape(60, -1, 2).any(axis=1)
    assert present[:, 0].any() and present[:, 1].any() and (~present.any(axis=1)).any()
    assert not (masks[..., 0] & masks[..., 1]).any()  # a pixel is one shape or none
    assert np.array_equal(make_class_masks(60, 64, seed=3)[1], masks)


def test_multiclass_files_rows_decode_back_to_the_drawn_masks(tmp_path):
    import zipfile

    import pandas as pd

    from podium.data.class_masks import masks_from_rows
    from podium.experiments.synthetic_files import GENERATED, MULTICLASS_IDS, write_class_mask_competition

    assert GENERATED["shapes-multiclass"]["n_train"] > 0  # what `make data` writes once a spec names it
    out = write_class_mask_competition(tmp_path, n_train=12, n_test=5, size=32, seed=5)
    train = pd.read_csv(out / "train.csv")
    assert list(train.columns) == ["ImageId_ClassId", "EncodedPixels"] and len(train) == 12 * 2
    assert train["ImageId_ClassId"].iloc[:2].tolist() == ["train-5-00000.png_1", "train-5-00000.png_2"]
    drawn = make_class_masks(12, 32, seed=10)[1]
    decoded = masks_from_rows(train, MULTICLASS_IDS, (32, 32))
    assert list(decoded) == [f"train-5-{i:05d}.png" for i in range(12)]
    np.testing.assert_array_equal(np.stack(list(decoded.values())), drawn)
    assert train["EncodedPixels"].isna().any()  # absent pairs: empty cells
    sample, answers = pd.read_csv(out / "sample_submission.csv"), pd.read_csv(out / "answers" / "test.csv")
    assert sample["ImageId_ClassId"].tolist() == answers["ImageId_ClassId"].tolist() and len(sample) == 10
    assert sample["EncodedPixels"].eq("1 1").all()
    np.testing.assert_array_equal(np.stack(list(masks_from_rows(answers, MULTICLASS_IDS, (32, 32)).values())),
                                  make_class_masks(5, 32, seed=11)[1])
    with zipfile.ZipFile(out / "test.zip") as archive:
        assert sorted(archive.namelist()) == [f"test/test-5-{i:05d}.png" for i in range(5)]
