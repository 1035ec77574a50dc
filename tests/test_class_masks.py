"""Image–class rows (Severstal's ImageId_ClassId, Clouds' Image_Label, separate columns) read into (H, W, C)
masks and written back in the sample's order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from podium.data.class_masks import join_id, masks_from_rows, pairs, rows_from_masks, split_id
from podium.data.rle import encode
from podium.errors import PodiumError

CLOUDS = ["Fish", "Flower", "Gravel", "Sugar"]


def test_split_on_the_last_underscore_and_join_back():
    assert split_id("0002cc93b.jpg_1", ["1", "2", "3", "4"]) == ("0002cc93b.jpg", "1")
    assert split_id("my_scan_07.png_Fish", CLOUDS) == ("my_scan_07.png", "Fish")  # `_` inside the name
    assert join_id("my_scan_07.png", "Fish") == "my_scan_07.png_Fish"


@pytest.mark.parametrize("pair_id, match", [("0002cc93b.jpg", "does not join"), ("_Fish", "does not join"),
                                            ("a.jpg_", "does not join"), ("a.jpg_Rain", "unknown class 'Rain'")])
def test_a_malformed_id_or_unknown_class_is_refused_naming_the_row(pair_id, match):
    frame = pd.DataFrame({"Image_Label": ["b.jpg_Fish", pair_id], "EncodedPixels": ["", ""]})
    with pytest.raises(PodiumError, match=match) as error:
        pairs(frame, CLOUDS, "Image_Label")
    assert "row 1" in str(error.value)


def _truth() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    masks = {name: (rng.random((6, 9, 3)) > 0.6).astype(np.uint8) for name in ("a_1.jpg", "b.jpg")}
    masks["b.jpg"][..., 1] = 0  # a class absent from an image
    return masks


def test_labels_rows_decode_into_one_channel_per_class_empty_where_absent_or_nan():
    truth, classes = _truth(), ["1", "2", "3"]
    rows = [(join_id(image, c), encode(mask[..., k]) or np.nan)
            for image, mask in truth.items() for k, c in enumerate(classes)]
    frame = pd.DataFrame(rows[:-1], columns=["ImageId_ClassId", "EncodedPixels"])  # b.jpg_3 not listed
    masks = masks_from_rows(frame, classes, (6, 9))
    assert list(masks) == ["a_1.jpg", "b.jpg"] and masks["a_1.jpg"].dtype == np.uint8
    np.testing.assert_array_equal(masks["a_1.jpg"], truth["a_1.jpg"])
    np.testing.assert_array_equal(masks["b.jpg"][..., :2], truth["b.jpg"][..., :2])
    assert masks["b.jpg"][..., 2].sum() == 0  # absent row: empty


def test_separate_image_and_class_columns_and_per_image_sizes():
    frame = pd.DataFrame({"image": ["x.png", "x.png", "y.png"], "label": ["Fish", "Sugar", "Fish"],
                          "rle": ["1 2", "", "3 1"]})
    masks = masks_from_rows(frame, CLOUDS, {"x.png": (2, 3), "y.png": (4, 1)}, rle_column="rle",
                            image_column="image", class_column="label")
    assert masks["x.png"].shape == (2, 3, 4) and masks["y.png"].shape == (4, 1, 4)
    assert masks["x.png"][:, 0, 0].tolist() == [1, 1] and masks["y.png"][2, 0, 0] == 1
    with pytest.raises(PodiumError, match="No image size for image 'y.png'"):
        masks_from_rows(frame, CLOUDS, {"x.png": (2, 3)}, rle_column="rle", image_column="image",
                        class_column="label")


def test_predictions_are_written_in_the_samples_order_and_read_back():
    truth, classes = _truth(), ["1", "2", "3"]
    ids = [join_id(image, c) for c in reversed(classes) for image in reversed(list(truth))]
    sample = pd.DataFrame({"ImageId_ClassId": ids, "EncodedPixels": "1 1"})
    out = rows_from_masks(sample, truth, classes)
    assert out["ImageId_ClassId"].tolist() == ids  # the sample's order, the sample left as it was
    assert sample["EncodedPixels"].eq("1 1").all()
    assert out.set_index("ImageId_ClassId").loc["b.jpg_2", "EncodedPixels"] == ""  # absent: empty string
    back = masks_from_rows(out, classes, (6, 9))
    for image, mask in truth.items():
        np.testing.assert_array_equal(back[image], mask)


def test_writing_refuses_a_missing_image_or_a_wrong_channel_count():
    sample = pd.DataFrame({"ImageId_ClassId": ["a.jpg_1", "c.jpg_1"], "EncodedPixels": ""})
    with pytest.raises(PodiumError, match=r"image 'c.jpg' \(row 1"):
        rows_from_masks(sample, {"a.jpg": np.zeros((2, 2, 2))}, ["1", "2"])
    with pytest.raises(PodiumError, match="one channel per class"):
        rows_from_masks(sample, {"a.jpg": np.zeros((2, 2, 1)), "c.jpg": np.zeros((2, 2, 1))}, ["1", "2"])
    with pytest.raises(PodiumError, match="no column 'ImageId_ClassId'"):
        rows_from_masks(sample.rename(columns={"ImageId_ClassId": "Image_Label"}), {}, ["1"])
