"""Segmentation (Airbus run-length rows) and localization (pixel boxes) submissions: predictions at the
model's size come back at each image's own size, in the sample's order, and invalid files are never written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data import rle
from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.submission.validate import read_sample_submission
from podium.submission.boxes import box_frame, box_submission_problems, write_box_submission
from podium.submission.masks import in_sample_order, mask_rows, mask_submission_problems, write_mask_submission

ID, RLE = "ImageId", "EncodedPixels"
HEIGHT, WIDTH = 40, 64  # a non-square test image; the model predicts at 32 x 32
SHAPES = {"a.png": (HEIGHT, WIDTH), "b.png": (HEIGHT, WIDTH), "c.png": (HEIGHT, WIDTH)}


def _square(top: int, left: int, side: int, size: int = 32) -> np.ndarray:
    plane = np.zeros((size, size), np.float32)
    plane[top:top + side, left:left + side] = 1.0
    return plane


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ---- mask rows at the image's own size ------------------------------------------------------------
def test_mask_rows_decode_at_the_image_size_where_the_scaled_square_is():
    probabilities = _square(8, 8, 8)[None, ..., None]  # (1, 32, 32, 1): rows 8..15, columns 8..15
    frame = mask_rows(["a.png"], probabilities, SHAPES, threshold=0.5, min_pixels=1, id_column=ID, rle_column=RLE)
    assert list(frame.columns) == [ID, RLE]
    assert frame[ID].tolist() == ["a.png"]
    mask = rle.decode(frame[RLE].iloc[0], (HEIGHT, WIDTH))
    assert mask.shape == (HEIGHT, WIDTH)
    # rows scale by 40/32 = 1.25 (10..20), columns by 64/32 = 2 (16..32)
    assert mask[15, 24] == 1
    assert mask[5, 5] == 0 and mask[15, 40] == 0 and mask[30, 24] == 0 and mask[15, 8] == 0
    assert 0.75 * 160 <= mask.sum() <= 1.25 * 160  # 8*8 pixels * 1.25 * 2
    ys, xs = np.nonzero(mask)
    assert 9 <= ys.min() <= 11 and 19 <= ys.max() <= 21
    assert 15 <= xs.min() <= 17 and 30 <= xs.max() <= 32


def test_mask_rows_write_one_row_per_separated_blob():
    probabilities = np.maximum(_square(2, 2, 6), _square(20, 20, 8))[None]
    frame = mask_rows(["a.png"], probabilities, SHAPES, 0.5, 1, ID, RLE)
    assert frame[ID].tolist() == ["a.png", "a.png"]
    objects = [rle.decode(value, (HEIGHT, WIDTH)) for value in frame[RLE]]
    assert all(obj.sum() > 0 for obj in objects)
    assert not np.any(objects[0] & objects[1])
    # largest first: the 8x8 square (rows ~25..35) then the 6x6 one (rows ~2..10)
    assert objects[0][30, 48] == 1 and objects[1][6, 10] == 1


def test_mask_rows_of_an_all_zero_map_are_one_empty_row():
    frame = mask_rows(["b.png"], np.zeros((1, 32, 32, 1), np.float32), SHAPES, 0.5, 1, ID, RLE)
    assert frame.values.tolist() == [["b.png", ""]]


def test_mask_rows_min_pixels_drops_a_tiny_blob():
    probabilities = np.maximum(_square(2, 2, 2), _square(20, 20, 8))[None]
    kept_all = mask_rows(["a.png"], probabilities, SHAPES, 0.5, 1, ID, RLE)
    assert len(kept_all) == 2  # the tiny blob survives the resize, so min_pixels is what drops it
    frame = mask_rows(["a.png"], probabilities, SHAPES, 0.5, 50, ID, RLE)
    assert len(frame) == 1
    assert rle.decode(frame[RLE].iloc[0], (HEIGHT, WIDTH))[30, 48] == 1


def test_in_sample_order_follows_the_sample_and_fills_an_unpredicted_id_with_an_empty_row():
    sample = pd.DataFrame({ID: ["c.png", "a.png", "b.png"], RLE: ["1 2", "1 2", "1 2"]})
    probabilities = np.stack([np.zeros((32, 32), np.float32), np.maximum(_square(2, 2, 6), _square(20, 20, 8))])
    rows = mask_rows(["b.png", "a.png"], probabilities, SHAPES, 0.5, 1, ID, RLE)
    frame = in_sample_order(rows, sample, ID, RLE)
    assert frame[ID].tolist() == ["c.png", "a.png", "a.png", "b.png"]
    assert frame[RLE].iloc[0] == "" and frame[RLE].iloc[3] == ""
    assert frame[RLE].iloc[1] != "" and frame[RLE].iloc[2] != ""
    assert frame[RLE].iloc[1:3].tolist() == rows.loc[rows[ID] == "a.png", RLE].tolist()
    assert mask_submission_problems(frame, sample, ID, RLE, SHAPES) == []


# ---- mask submission checks -----------------------------------------------------------------------
MASK_SAMPLE = pd.DataFrame({ID: ["a.png", "b.png"], RLE: ["1 2", "1 2"]})
VALID_MASKS = pd.DataFrame({ID: ["a.png", "a.png", "b.png"], RLE: ["1 5 41 5", "200 3", ""]})


def test_a_valid_mask_submission_has_no_problems():
    assert mask_submission_problems(VALID_MASKS, MASK_SAMPLE, ID, RLE, SHAPES) == []


@pytest.mark.parametrize("rows, names", [
    pytest.param([("a.png", "1 5"), ("c.png", "")], ["'c.png'", "not in the sample", "'b.png'", "no row"],
                 id="extra-and-missing-id"),
    pytest.param([("a.png", "1 5")], ["'b.png'", "no row"], id="sample-id-without-row"),
    pytest.param([("a.png", "1 5"), ("b.png", ""), ("z.png", "3 4")], ["'z.png'", "not in the sample"],
                 id="id-not-in-sample"),
    pytest.param([("a.png", "2550 20"), ("b.png", "")], ["'a.png'", "outside the image"], id="run-outside-image"),
    pytest.param([("a.png", "100 5 50 5"), ("b.png", "")], ["'a.png'", "unsorted or overlap"], id="unsorted-runs"),
    pytest.param([("a.png", "10 5 12 3"), ("b.png", "")], ["'a.png'", "unsorted or overlap"],
                 id="overlapping-runs-in-one-string"),
    pytest.param([("a.png", "10 5"), ("a.png", "12 5"), ("b.png", "")], ["'a.png'", "objects overlap"],
                 id="two-objects-overlap"),
    pytest.param([("a.png", "10 5"), ("b.png", ""), ("b.png", "300 4")], ["'b.png'", "empty row beside"],
                 id="empty-row-beside-object"),
    pytest.param([("a.png", "1 x"), ("b.png", "")], ["'a.png'", "other than integers"], id="not-integers"),
])
def test_mask_submission_problems_name_each_problem(rows, names):
    frame = pd.DataFrame(rows, columns=[ID, RLE])
    problems = mask_submission_problems(frame, MASK_SAMPLE, ID, RLE, SHAPES)
    assert problems
    text = " | ".join(problems)
    for name in names:
        assert name in text, (name, problems)


def test_the_last_pixel_of_the_image_is_inside_but_one_past_it_is_not():
    last = HEIGHT * WIDTH
    ok = pd.DataFrame({ID: ["a.png", "b.png"], RLE: [f"{last - 4} 5", ""]})
    assert mask_submission_problems(ok, MASK_SAMPLE, ID, RLE, SHAPES) == []
    past = pd.DataFrame({ID: ["a.png", "b.png"], RLE: [f"{last - 4} 6", ""]})
    assert "'a.png'" in " ".join(mask_submission_problems(past, MASK_SAMPLE, ID, RLE, SHAPES))


def test_mask_submission_with_wrong_columns_names_the_missing_column():
    frame = VALID_MASKS.rename(columns={RLE: "Pixels"})
    problems = mask_submission_problems(frame, MASK_SAMPLE, ID, RLE, SHAPES)
    assert len(problems) == 1
    assert "'EncodedPixels'" in problems[0] and "'Pixels'" in problems[0]


def test_invalid_mask_submission_is_refused_and_the_old_file_survives(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_bytes(b"ImageId,EncodedPixels\nold.png,1 2\n")
    before = path.read_bytes()
    frame = pd.DataFrame({ID: ["a.png", "a.png", "b.png"], RLE: ["10 5", "12 5", ""]})
    with pytest.raises(PodiumError) as caught:
        write_mask_submission(path, frame, MASK_SAMPLE, ID, RLE, SHAPES)
    assert "'a.png'" in caught.value.received and "overlap" in caught.value.received
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]


def test_valid_mask_submission_is_written_and_reads_back_equal(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text("stale\n")
    assert write_mask_submission(path, VALID_MASKS, MASK_SAMPLE, ID, RLE, SHAPES) == path
    pd.testing.assert_frame_equal(_read(path), VALID_MASKS)


# ---- localization ---------------------------------------------------------------------------------
BOX_CLASSES = ("bright", "dark")
BOX_SHAPES = {"p.png": (100, 200), "q.png": (100, 200), "r.png": (100, 200)}  # height 100, width 200


@pytest.fixture(scope="module")
def xyxy_spec():
    return load_competition("shapes-localization")


@pytest.fixture
def xywh_spec(tmp_path):
    path = tmp_path / "boxes-xywh.yaml"
    path.write_text("slug: boxes-xywh\ntask: localization\nlayout: csv\nlabels_csv: boxes.csv\nid_column: ImageId\n"
                    "label_column: label\nbox_format: xywh\nbox_columns: [x, y, w, h]\n"
                    "sample_submission: sample.csv\nsubmission_id_column: ImageId\nsubmission_label_column: label\n"
                    "submission_id: filename\nclasses: [bright, dark]\nmetric: mean_iou\n", encoding="utf-8")
    return load_competition(str(path))


def _box_sample(tmp_path: Path, columns: list[str]) -> pd.DataFrame:
    path = tmp_path / "sample.csv"
    header = ",".join(["ImageId", "label", *columns])
    path.write_text(header + "\nq.png,dark,0,0,200,100\np.png,dark,0,0,200,100\nr.png,dark,0,0,200,100\n")
    return read_sample_submission(path, "ImageId", "label")


@pytest.mark.parametrize("fmt, expected", [("xyxy", [50, 50, 150, 100]), ("xywh", [50, 50, 100, 50])])
def test_box_frame_writes_pixels_of_the_image_in_the_spec_format(tmp_path, xyxy_spec, xywh_spec, fmt, expected):
    spec = xyxy_spec if fmt == "xyxy" else xywh_spec
    assert spec.box_format == fmt
    sample = _box_sample(tmp_path, list(spec.box_columns))
    predicted = {"p.png": ("bright", np.array([0.25, 0.5, 0.75, 1.0], np.float32)),
                 "r.png": ("dark", np.array([0.0, 0.0, 0.5, 0.5], np.float32))}
    frame = box_frame(sample, spec, predicted, BOX_SHAPES)
    assert list(frame.columns) == list(sample.columns)
    assert frame["ImageId"].tolist() == ["q.png", "p.png", "r.png"]  # the sample's order
    p = frame.iloc[1]
    assert p["label"] == "bright"
    assert [float(p[c]) for c in spec.box_columns] == pytest.approx(expected)
    # the id without a prediction keeps the sample's placeholder row
    assert frame.iloc[0].tolist() == sample.iloc[0].tolist()
    assert box_submission_problems(frame, sample, spec, BOX_CLASSES, BOX_SHAPES) == []


def test_box_frame_clips_fractions_outside_the_image(tmp_path, xyxy_spec):
    sample = _box_sample(tmp_path, list(xyxy_spec.box_columns))
    frame = box_frame(sample, xyxy_spec, {"p.png": ("dark", np.array([-0.1, 0.2, 1.3, 0.9]))}, BOX_SHAPES)
    assert [float(v) for v in frame.iloc[1][["x1", "y1", "x2", "y2"]]] == pytest.approx([0, 20, 200, 90])


def _valid_boxes(sample: pd.DataFrame) -> pd.DataFrame:
    frame = sample.copy()
    frame["label"] = ["bright", "dark", "bright"]
    frame[["x1", "y1", "x2", "y2"]] = [["10", "10", "20", "20"], ["0", "0", "200", "100"], ["5.5", "6", "100", "50"]]
    return frame


@pytest.mark.parametrize("change, names", [
    pytest.param(lambda f: f.assign(x2=["20", "250", "100"]), ["'p.png'", "outside"], id="box-outside-image"),
    pytest.param(lambda f: f.assign(y2=["20", "100", "101"]), ["'r.png'", "outside"], id="box-below-image"),
    pytest.param(lambda f: f.assign(x1=["20", "0", "5.5"]), ["'q.png'", "outside their image or of no size"],
                 id="box-of-no-size"),
    pytest.param(lambda f: f.assign(y1=["10", "abc", "6"]), ["'p.png'", "not a number"], id="box-not-a-number"),
    pytest.param(lambda f: f.assign(label=["bright", "purple", "bright"]), ["'purple'", "not among the classes"],
                 id="unknown-class"),
    pytest.param(lambda f: f.iloc[[0, 2]].reset_index(drop=True), ["'p.png'", "missing"], id="missing-id"),
])
def test_box_submission_problems_name_each_problem(tmp_path, xyxy_spec, change, names):
    sample = _box_sample(tmp_path, list(xyxy_spec.box_columns))
    assert box_submission_problems(_valid_boxes(sample), sample, xyxy_spec, BOX_CLASSES, BOX_SHAPES) == []
    problems = box_submission_problems(change(_valid_boxes(sample)), sample, xyxy_spec, BOX_CLASSES, BOX_SHAPES)
    text = " | ".join(problems)
    for name in names:
        assert name in text, (name, problems)


def test_xywh_boxes_are_checked_as_width_and_height(tmp_path, xywh_spec):
    sample = _box_sample(tmp_path, list(xywh_spec.box_columns))
    frame = sample.copy()
    frame[["x", "y", "w", "h"]] = [["150", "50", "50", "50"], ["150", "50", "51", "50"], ["0", "0", "200", "100"]]
    problems = box_submission_problems(frame, sample, xywh_spec, BOX_CLASSES, BOX_SHAPES)
    assert len(problems) == 1 and "'p.png'" in problems[0] and "'q.png'" not in problems[0]


def test_invalid_box_submission_is_refused_and_the_old_file_survives(tmp_path, xyxy_spec):
    sample = _box_sample(tmp_path, list(xyxy_spec.box_columns))
    path = tmp_path / "submission.csv"
    path.write_bytes(b"ImageId,label,x1,y1,x2,y2\nold.png,dark,1,1,2,2\n")
    before = path.read_bytes()
    frame = _valid_boxes(sample).assign(x2=["20", "250", "100"])
    with pytest.raises(PodiumError) as caught:
        write_box_submission(path, frame, sample, xyxy_spec, BOX_CLASSES, BOX_SHAPES)
    assert "'p.png'" in caught.value.received
    assert path.read_bytes() == before


def test_valid_box_submission_is_written_and_reads_back_equal(tmp_path, xyxy_spec):
    sample = _box_sample(tmp_path, list(xyxy_spec.box_columns))
    frame = box_frame(sample, xyxy_spec, {"p.png": ("bright", np.array([0.25, 0.5, 0.75, 1.0]))}, BOX_SHAPES)
    path = write_box_submission(tmp_path / "out" / "submission.csv", frame, sample, xyxy_spec, BOX_CLASSES, BOX_SHAPES)
    written = _read(path)
    assert written.values.tolist() == frame.astype(str).values.tolist()
    assert written.iloc[1].tolist() == ["p.png", "bright", "50.0", "50.0", "150.0", "100.0"]
