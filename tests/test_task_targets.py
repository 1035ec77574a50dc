"""Masks and boxes read from real Kaggle-style files (the shapes competitions written to disk and run
through `make data`): the index labels, the cached masks at the model's size, fractional boxes, and bad
rows refused at `make data` with the offending id."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data import rle
from podium.data.competitions import load_competition
from podium.config import ExperimentConfig
from podium.data.dataset import load_labeled_data
from podium.data.folds import labeled_rows
from podium.data.images import resize_plane
from podium.data.index import load_index
from podium.data.targets import load_boxes, load_masks
from podium.errors import PodiumError
from podium.experiments.synthetic_files import write_shapes_competition
from tests_support import make_data
from podium.tasks import get_task

WIDTH, HEIGHT = 48, 40
SEG, LOC = "shapes-segmentation", "shapes-localization"
MASKS_CSV, BOXES_CSV = "train_ship_segmentations.csv", "train_boxes.csv"


def _write_raw(folder: Path) -> Path:
    return write_shapes_competition(folder, n_train=12, n_test=4, size=32, file_size=(WIDTH, HEIGHT), seed=0,
                                    object_probability=0.75)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    """The raw competition files as Kaggle would serve them. Treat as read-only: copy before corrupting."""
    return _write_raw(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, raw_dir) -> Path:
    """`make data` run for both shapes competitions from raw_dir. Treat as read-only."""
    data = tmp_path_factory.mktemp("data")
    make_data(SEG, data_dir=str(data), source_dir=str(raw_dir))
    make_data(LOC, data_dir=str(data), source_dir=str(raw_dir))
    return data


@pytest.fixture
def raw_copy(tmp_path, raw_dir) -> Path:
    return Path(shutil.copytree(raw_dir, tmp_path / "raw"))


def _true_mask(table: pd.DataFrame, image_id: str) -> np.ndarray:
    return rle.image_mask(table.loc[table["ImageId"] == image_id, "EncodedPixels"].tolist(), (HEIGHT, WIDTH))


def _expected_masks(table: pd.DataFrame, ids: list[str], size: int) -> np.ndarray:
    return np.stack([(resize_plane(_true_mask(table, i), size, size) >= 0.5).astype(np.uint8)[..., None]
                     for i in ids])


# ---- segmentation ---------------------------------------------------------------------------------
def test_segmentation_index_labels_say_whether_the_image_has_an_object(data_dir, raw_dir):
    index = load_index(data_dir / SEG / "index.parquet")
    table = _read(raw_dir / MASKS_CSV)
    has_object = table.groupby("ImageId")["EncodedPixels"].apply(lambda v: any(s.strip() for s in v))
    train = index[index["split"] == "train"]
    assert len(train) == 12 and train["ok"].all()
    assert (train["width"] == WIDTH).all() and (train["height"] == HEIGHT).all()
    labels = dict(zip(train["id"], train["label"]))
    assert labels == {i: "object" if flag else "empty" for i, flag in has_object.items()}
    assert set(labels.values()) == {"object", "empty"}  # both kinds present, so the check can tell them apart


def test_load_masks_are_the_full_size_masks_resized_to_the_model_size(data_dir, raw_dir):
    spec, root = load_competition(SEG), data_dir / SEG
    rows = labeled_rows(load_index(root / "index.parquet"))
    masks = load_masks(spec, root, rows, 32, root / "cache", progress=False)
    assert masks.shape == (12, 32, 32, 1) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    table = _read(raw_dir / MASKS_CSV)
    np.testing.assert_array_equal(masks, _expected_masks(table, rows["id"].tolist(), 32))
    labels = rows["label"].to_numpy()
    assert masks[labels == "object"].reshape(int((labels == "object").sum()), -1).any(axis=1).all()
    assert not masks[labels == "empty"].any()


def test_load_masks_reuses_its_cache_and_rebuilds_it_when_the_csv_changes(tmp_path, raw_dir):
    data = tmp_path / "data"
    make_data(SEG, data_dir=str(data), source_dir=str(raw_dir))
    spec, root = load_competition(SEG), data / SEG
    rows = labeled_rows(load_index(root / "index.parquet"))
    first = np.array(load_masks(spec, root, rows, 32, root / "cache", progress=False))
    files = sorted((root / "cache").glob("masks-32-*.u8"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = load_masks(spec, root, rows, 32, root / "cache", progress=False)
    assert sorted((root / "cache").glob("masks-32-*.u8")) == files
    assert files[0].stat().st_mtime_ns == stamp  # read back, not rebuilt
    np.testing.assert_array_equal(second, first)

    table = _read(root / MASKS_CSV)
    changed = next(i for i, v in zip(table["ImageId"], table["EncodedPixels"]) if v.strip())
    position = rows["id"].tolist().index(changed)
    assert first[position].any()
    emptied = pd.DataFrame({"ImageId": [changed], "EncodedPixels": [""]})
    edited = pd.concat([table[table["ImageId"] != changed], emptied])
    edited.to_csv(root / MASKS_CSV, index=False)
    third = load_masks(spec, root, rows, 32, root / "cache", progress=False)
    assert len(list((root / "cache").glob("masks-32-*.u8"))) == 2
    assert not third[position].any()
    others = [k for k in range(len(rows)) if k != position]
    np.testing.assert_array_equal(third[others], first[others])


# ---- localization ---------------------------------------------------------------------------------
def test_load_boxes_are_the_csv_pixels_as_fractions_of_the_image(data_dir, raw_dir):
    spec, root = load_competition(LOC), data_dir / LOC
    rows = labeled_rows(load_index(root / "index.parquet"))
    table = _read(raw_dir / BOXES_CSV).set_index("ImageId")
    assert len(rows) == len(table) == 8  # only the images with an ellipse have a box
    boxes = load_boxes(spec, root, rows)
    assert boxes.shape == (8, 4) and boxes.dtype == np.float32
    pixels = table.loc[rows["id"], ["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(boxes, pixels / [WIDTH, HEIGHT, WIDTH, HEIGHT], rtol=1e-6)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_load_boxes_of_an_xywh_spec_are_the_same_fractions(tmp_path, raw_copy, data_dir):
    xyxy = _read(raw_copy / BOXES_CSV)
    x1, y1, x2, y2 = (xyxy[c].astype(int) for c in ("x1", "y1", "x2", "y2"))
    xywh = pd.DataFrame({"ImageId": xyxy["ImageId"], "label": xyxy["label"], "x": x1, "y": y1, "w": x2 - x1,
                         "h": y2 - y1})
    xywh.to_csv(raw_copy / "boxes_xywh.csv", index=False)
    spec_path = _spec(tmp_path, "slug: shapes-xywh\ntask: localization\nlayout: csv\n"
                                "archives: [train.zip, test.zip, boxes_xywh.csv, sample_submission_boxes.csv]\n"
                                "labels_csv: boxes_xywh.csv\nid_column: ImageId\nlabel_column: label\n"
                                "box_format: xywh\nbox_columns: [x, y, w, h]\n"
                                "sample_submission: sample_submission_boxes.csv\nsubmission_id_column: ImageId\n"
                                "submission_label_column: label\nsubmission_id: filename\nclasses: [bright, dark]\n")
    make_data(spec_path, data_dir=str(tmp_path / "data"), source_dir=str(raw_copy))
    spec, root = load_competition(spec_path), tmp_path / "data" / "shapes-xywh"
    rows = labeled_rows(load_index(root / "index.parquet"))
    xyxy_rows = labeled_rows(load_index(data_dir / LOC / "index.parquet"))
    reference = load_boxes(load_competition(LOC), data_dir / LOC, xyxy_rows)
    np.testing.assert_allclose(load_boxes(spec, root, rows), reference, rtol=1e-6)


def test_make_data_checks_an_xywh_box_by_its_right_edge(tmp_path, raw_copy):
    """x + w past the width is outside, though x and w are each smaller than the width."""
    xyxy = _read(raw_copy / BOXES_CSV)
    xywh = pd.DataFrame({"ImageId": xyxy["ImageId"], "label": xyxy["label"], "x": "30", "y": "5", "w": "10",
                         "h": "10"})
    xywh.loc[xywh["ImageId"] == "train-0-00001.png", "w"] = "20"  # 30 + 20 = 50 > 48
    xywh.to_csv(raw_copy / "boxes_xywh.csv", index=False)
    spec_path = _spec(tmp_path, "slug: shapes-xywh\ntask: localization\nlayout: csv\n"
                                "archives: [train.zip, test.zip, boxes_xywh.csv]\nlabels_csv: boxes_xywh.csv\n"
                                "id_column: ImageId\nlabel_column: label\nbox_format: xywh\n"
                                "box_columns: [x, y, w, h]\nclasses: [bright, dark]\n")
    err = _make_data_error(tmp_path, spec_path, raw_copy)
    assert "'train-0-00001.png'" in err.received and "x2=50" in err.received
    assert "train-0-00000.png" not in err.received


# ---- bad rows refused at `make data` --------------------------------------------------------------
def _corrupt(raw: Path, csv: str, image_id: str, **values) -> None:
    table = _read(raw / csv)
    assert image_id in set(table["ImageId"])
    for column, value in values.items():
        table.loc[table["ImageId"] == image_id, column] = value
    table.to_csv(raw / csv, index=False)


def _make_data_error(tmp_path: Path, slug: str, raw: Path) -> PodiumError:
    with pytest.raises(PodiumError) as caught:
        make_data(slug, data_dir=str(tmp_path / "data"), source_dir=str(raw))
    return caught.value


def test_make_data_refuses_a_run_past_the_end_of_the_image(tmp_path, raw_copy):
    _corrupt(raw_copy, MASKS_CSV, "train-0-00003.png", EncodedPixels=f"{HEIGHT * WIDTH - 10} 20")
    err = _make_data_error(tmp_path, SEG, raw_copy)
    assert "'train-0-00003.png'" in err.received and "outside the image" in err.received
    assert "train-0-00003.png" in str(err)


def test_make_data_refuses_a_run_length_string_that_is_not_integers(tmp_path, raw_copy):
    _corrupt(raw_copy, MASKS_CSV, "train-0-00006.png", EncodedPixels="12 4 30 x")
    err = _make_data_error(tmp_path, SEG, raw_copy)
    assert "'train-0-00006.png'" in err.received and "integers" in err.received


def test_make_data_refuses_a_box_beyond_the_image_width(tmp_path, raw_copy):
    _corrupt(raw_copy, BOXES_CSV, "train-0-00007.png", x2=str(WIDTH + 12))
    err = _make_data_error(tmp_path, LOC, raw_copy)
    assert "'train-0-00007.png'" in err.received and f"x2={WIDTH + 12}" in err.received
    assert "train-0-00000.png" not in str(err)


def test_make_data_refuses_a_box_value_that_is_not_a_number(tmp_path, raw_copy):
    _corrupt(raw_copy, BOXES_CSV, "train-0-00008.png", y1="abc")
    err = _make_data_error(tmp_path, LOC, raw_copy)
    assert "train-0-00008.png" in str(err) and "not a number" in str(err)


def test_make_data_refuses_a_labels_csv_without_the_run_length_column(tmp_path, raw_copy):
    _read(raw_copy / MASKS_CSV).rename(columns={"EncodedPixels": "Pixels"}).to_csv(raw_copy / MASKS_CSV, index=False)
    err = _make_data_error(tmp_path, SEG, raw_copy)
    assert "'EncodedPixels'" in str(err) and "Pixels" in err.received


# ---- specs ----------------------------------------------------------------------------------------
def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_segmentation_spec_with_a_folder_layout_is_refused(tmp_path):
    with pytest.raises(PodiumError) as caught:
        load_competition(_spec(tmp_path, "slug: seg-folders\ntask: segmentation\nlayout: folder\n"))
    assert "layout: folder" in caught.value.received and "labels_csv" in caught.value.received
    assert "segmentation" in caught.value.what


def test_a_spec_with_three_box_columns_is_refused(tmp_path):
    text = "slug: three\ntask: localization\nlayout: csv\nlabels_csv: boxes.csv\nbox_columns: [x, y, w]\n"
    with pytest.raises(PodiumError) as caught:
        load_competition(_spec(tmp_path, text))
    assert "box_columns" in caught.value.what and "['x', 'y', 'w']" in caught.value.received


# ---- what a training run loads --------------------------------------------------------------------
def test_a_classification_config_on_a_segmentation_competition_is_refused(data_dir):
    cfg = ExperimentConfig(competition=SEG, data_dir=str(data_dir), task="classification")
    with pytest.raises(PodiumError) as caught:
        load_labeled_data(cfg, get_task(cfg.task), progress=False)
    assert "segmentation competition" in caught.value.what
    assert caught.value.expected == "task=segmentation" and caught.value.received == "task=classification"
    assert "set task: segmentation" in caught.value.fix


def test_a_segmentation_config_loads_masks_aligned_with_the_images(tmp_path, raw_dir):
    data = tmp_path / "data"
    make_data(SEG, data_dir=str(data), source_dir=str(raw_dir))
    cfg = ExperimentConfig(competition=SEG, data_dir=str(data), task="segmentation", monitor="val_dice",
                           image_size=32, val_split=0.25)
    loaded = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    assert loaded.images.shape == (12, 32, 32, 3)
    assert loaded.targets.shape == (12, 32, 32, 1)
    assert loaded.classes == ["empty", "object"]
    table = _read(raw_dir / MASKS_CSV)
    np.testing.assert_array_equal(loaded.targets, _expected_masks(table, [str(i) for i in loaded.ids], 32))
    has_mask = loaded.targets.reshape(12, -1).any(axis=1)
    np.testing.assert_array_equal(has_mask, loaded.labels == loaded.classes.index("object"))
    assert set(loaded.folds) == {0, 1} and (loaded.folds == 0).sum() == 3  # a 25% holdout of 12
