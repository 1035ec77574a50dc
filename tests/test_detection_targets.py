"""Detection specs and targets on real Kaggle-style files: the spec's detection fields, a labels CSV of one row
per box (four columns or Global Wheat's list column, empty rows meaning no box), the index listing every
train image (those the CSV leaves out too), bad rows refused with their id, and the padded training targets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data.competitions import load_competition, prediction_string_format
from podium.data.competitions import DEFAULT_BOX_CLASS
from podium.data.detection_targets import (NO_BOX, count_bin, detection_class_names, detection_labels,
                                           detection_problems, detection_targets, image_boxes, read_box_rows,
                                           targets_to_detections)
from podium.data.extract import extract
from podium.data.index import build_index
from podium.data.targets import check_targets, image_shapes
from podium.errors import PodiumError
from podium.experiments.synthetic_files import write_detection_competition
from podium.submission.prediction_string import FORMATS

SPEC = load_competition("shapes-detection")
WIDTH, HEIGHT = 60, 48  # files stored non-square; drawn at 48 x 48


class DetectionIndexTask:
    """What build_index asks a task (data.index.IndexTask), answered by detection_targets' functions."""

    def index_labels(self, spec, data_root):
        return detection_labels(spec, data_root)

    def class_names(self, labels):
        return []  # the index labels are bins and rarest classes, not the class list

    def check_targets(self, spec, data_root, index):
        check_targets(spec, data_root, index, detection_problems)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """The generated competition unpacked as `make data` does. Treat as read-only."""
    raw = write_detection_competition(tmp_path_factory.mktemp("raw"), n_train=30, n_test=6, size=48,
                                      file_size=(WIDTH, HEIGHT), seed=6)
    root = tmp_path_factory.mktemp("data") / SPEC.slug
    extract(SPEC, raw, root)
    return root


@pytest.fixture
def root_copy(tmp_path, data_root) -> Path:
    return Path(shutil.copytree(data_root, tmp_path / "root"))


def _spec(tmp_path: Path, **changes) -> object:
    text = (Path(__file__).parents[1] / "src/podium/competitions/shapes-detection.yaml").read_text()
    lines = [line for line in text.splitlines() if line.split(":")[0] not in changes]
    lines += [f"{key}: {value}" for key, value in changes.items() if value is not None]
    path = tmp_path / "spec.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_competition(str(path))


# ---- spec fields ----------------------------------------------------------------------------------
def test_prediction_string_is_a_preset_a_mapping_or_the_specs_own_boxes(tmp_path):
    assert SPEC.resolved_prediction_string.pattern == "class score x y w h"
    assert _spec(tmp_path, prediction_string="vinbigdata").resolved_prediction_string == FORMATS["vinbigdata"]
    plain = _spec(tmp_path, prediction_string=None, class_column=None, classes="[wheat]")
    assert plain.resolved_prediction_string.pattern == "score x y w h"  # box_format xywh, one class
    after = _spec(tmp_path, prediction_string="{box_format: xyxy, score_first: false, empty_row: none}")
    assert after.resolved_prediction_string.pattern == "class x1 y1 x2 y2 score"
    assert after.resolved_prediction_string.empty_row == "none"


@pytest.mark.parametrize("value, words", [("yolo", "global_wheat, vinbigdata, great_barrier_reef"),
                                          ("{box_format: xywh, classy: true}", "classy"),
                                          ("{has_class: 'yes'}", "true or false"),
                                          ("{box_format: cxcywh}", "xyxy")])
def test_a_bad_prediction_string_is_refused_at_load_naming_what_is_known(tmp_path, value, words):
    with pytest.raises(PodiumError, match="prediction_string|PredictionString|box format") as err:
        _spec(tmp_path, prediction_string=value)
    assert words in str(err.value)


def test_detection_fields_belong_to_detection_and_one_box_column_only_there(tmp_path):
    spec = _spec(tmp_path, box_columns="[bbox]")
    assert spec.box_columns == ("bbox",)
    with pytest.raises(PodiumError, match="classes without a class_column"):
        _spec(tmp_path, class_column=None)
    with pytest.raises(PodiumError, match="class_column without class_masks"):
        _spec(tmp_path, task="localization", prediction_string=None, metric="mean_iou", classes="[a]")
    with pytest.raises(PodiumError, match="four distinct box_columns"):
        _spec(tmp_path, task="localization", class_column=None, prediction_string=None, metric="mean_iou",
              box_columns="[bbox]", classes="[a]")
    assert prediction_string_format("", "xyxy", True).fields[0] == "class"


# ---- reading the CSV ------------------------------------------------------------------------------
def _global_wheat(root: Path, tmp_path: Path) -> object:
    """Global Wheat's form: bbox "[x, y, w, h]", one class, an image without wheat absent from the CSV."""
    frame = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    pd.DataFrame({"image_id": frame["image_id"].str.replace(".png", "", regex=False),
                  "bbox": [f"[{x}, {y}, {w}, {h}]" for x, y, w, h in frame[["x", "y", "w", "h"]].to_numpy()],
                  "source": "usask_1"}).to_csv(root / "wheat.csv", index=False)
    return _spec(tmp_path, labels_csv="wheat.csv", box_columns="[bbox]", class_column=None, classes="[wheat]",
                 prediction_string="global_wheat", submission_id="stem", metric="wheat_map")


def test_a_list_column_reads_as_the_four_columns_do(root_copy, tmp_path):
    wheat = _global_wheat(root_copy, tmp_path)
    four, listed = read_box_rows(SPEC, root_copy), read_box_rows(wheat, root_copy)
    np.testing.assert_allclose(listed[["x1", "y1", "x2", "y2"]], four[["x1", "y1", "x2", "y2"]], atol=1e-9)
    assert detection_class_names(wheat, root_copy) == ["wheat"]
    first = four.iloc[0]
    raw = pd.read_csv(root_copy / "train.csv").iloc[0]
    assert (first["x1"], first["y2"]) == (raw["x"], raw["y"] + raw["h"])  # xywh -> xyxy pixels


def test_the_index_lists_every_train_image_with_the_images_without_boxes(data_root, root_copy, tmp_path):
    index = build_index(SPEC, data_root, DetectionIndexTask())
    train = index[index["split"] == "train"]
    assert len(train) == 30 and train["ok"].all()
    listed = set(pd.read_csv(data_root / "train.csv")["image_id"])
    absent = train[~train["id"].isin(listed)]
    assert len(absent) > 0 and (absent["label"] == NO_BOX).all()  # several classes: rarest class or none
    assert set(train.loc[train["id"].isin(listed), "label"]) <= {"ellipse", "rectangle", "triangle"}
    wheat = _global_wheat(root_copy, tmp_path)  # one class: count bins; ids as stems, as the CSV spells them
    labels = detection_labels(wheat, root_copy).set_index("image_id")["label"]
    assert len(labels) == 30 and "train-6-00000" in labels.index
    counts = pd.read_csv(root_copy / "wheat.csv")["image_id"].value_counts()
    assert all(labels[i] == count_bin(int(counts.get(i, 0))) for i in labels.index)
    assert [count_bin(n) for n in (0, 1, 2, 3, 4, 7, 8, 40)] == ["0 boxes", "1 box", "2-3 boxes", "2-3 boxes",
                                                                    "4-7 boxes", "4-7 boxes", "8-15 boxes", "32-63 boxes"]


def test_rows_with_empty_boxes_mean_no_box_and_their_class_is_no_class(root_copy, tmp_path):
    """VinBigData's "No finding" rows: class 14 with empty box cells; class ids sort as numbers."""
    frame = pd.read_csv(root_copy / "train.csv", dtype=str, keep_default_na=False)
    codes = {"ellipse": "0", "rectangle": "2", "triangle": "10"}
    frame["class"] = frame["class"].map(codes)
    frame.loc[len(frame)] = ["train-6-00001.png", "", "", "", "", "14"]
    frame.to_csv(root_copy / "vin.csv", index=False)
    spec = _spec(tmp_path, labels_csv="vin.csv", classes=None, prediction_string="vinbigdata")
    assert detection_class_names(spec, root_copy) == ["0", "2", "10"]
    rows = read_box_rows(spec, root_copy)
    assert rows.iloc[-1]["class"] == "" and np.isnan(rows.iloc[-1]["x1"])
    assert not detection_problems(spec, root_copy, {"train-6-00001.png": (HEIGHT, WIDTH)})


# ---- problems at `make data` ----------------------------------------------------------------------
def test_bad_rows_are_refused_at_make_data_each_with_its_id(data_root, root_copy):
    frame = pd.read_csv(root_copy / "train.csv", dtype=str, keep_default_na=False)
    frame.loc[0, "w"] = "wide"
    frame.loc[1, "x"] = str(WIDTH - 2)  # runs past the right edge
    frame.loc[2, "h"] = "0"
    frame.loc[3, "class"] = "hexagon"
    frame.to_csv(root_copy / "train.csv", index=False)
    shapes = image_shapes(build_index(SPEC, data_root, DetectionIndexTask()))
    problems = detection_problems(SPEC, root_copy, shapes)
    assert len(problems) == 4
    ids = frame["image_id"]
    assert any("not a number" in p and ids[0] in p for p in problems)
    assert any("hexagon" in p and ids[3] in p for p in problems)
    assert sum(f"for a {WIDTH} x {HEIGHT}" in p for p in problems) == 2
    with pytest.raises(PodiumError, match="4 target rows") as err:
        build_index(SPEC, root_copy, DetectionIndexTask())
    assert "line 2" in str(err.value)


# ---- training targets -----------------------------------------------------------------------------
def test_targets_are_padded_fractions_with_class_indices(data_root):
    index = build_index(SPEC, data_root, DetectionIndexTask())
    rows = index[index["split"] == "train"].reset_index(drop=True)
    classes = detection_class_names(SPEC, data_root)
    targets = detection_targets(SPEC, data_root, rows, classes)
    boxes = image_boxes(SPEC, data_root, classes)
    counts = [len(boxes.get(i, ())) for i in rows["id"]]
    assert targets.dtype == np.float32 and targets.shape == (30, max(counts), 5)
    for target, image_id, count in zip(targets, rows["id"], counts):
        assert (target[count:] == -1).all() and (target[:count, 4] >= 0).all()
        if count:
            pixels = target[:count, :4] * [WIDTH, HEIGHT, WIDTH, HEIGHT]
            np.testing.assert_allclose(pixels, boxes[image_id][:, 1:], atol=1e-3)
            np.testing.assert_array_equal(target[:count, 4], boxes[image_id][:, 0])
    back = targets_to_detections(targets)
    assert [len(b) for b in back] == counts and all(b.shape[1] == 5 for b in back)
    assert detection_targets(SPEC, data_root, rows.iloc[:0], classes).shape == (0, 1, 5)
    assert detection_targets(SPEC, data_root, rows, classes, max_boxes=2).shape == (30, 2, 5)


def test_one_class_without_a_class_column_is_named_object(root_copy, tmp_path):
    spec = _spec(tmp_path, class_column=None, classes=None, prediction_string="global_wheat")
    assert detection_class_names(spec, root_copy) == [DEFAULT_BOX_CLASS]
    boxes = image_boxes(spec, root_copy, [DEFAULT_BOX_CLASS])
    assert all((b[:, 0] == 0).all() for b in boxes.values())
