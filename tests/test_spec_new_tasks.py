"""`make spec` on detection and segmentation-with-several-classes folders: the generated shapes-detection and
shapes-multiclass competitions, and Global Wheat-, VinBigData-, Clouds- and Severstal-shaped folders written from
generated PNGs. The drafted spec must load, pass `make spec`'s check and make `make data` index every image."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data.competitions import load_competition
from podium.data.rle import decode, encode
from podium.experiments.synthetic_files import write_class_mask_competition, write_detection_competition
from podium.spec import draft_spec, write_draft
from podium.spec.draft_objects import no_box_row
from podium.spec.scan_objects import box_list_column, box_numbers, joined_images, mask_classes, read_box_format
from tests_support import make_data, spec_check

VIN_NAMES = ["Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD",
             "Infiltration", "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening",
             "Pneumothorax", "Pulmonary fibrosis"]


def _drafted(source, tmp_path):
    """The draft written and loaded, checked by `make spec`'s check, and indexed by `make data`."""
    draft = draft_spec(source)
    out = tmp_path / "spec.yaml"
    write_draft(draft, out)
    spec = load_competition(str(out))
    check = spec_check(spec, source)
    assert check.ok, check.problems
    summary = make_data(str(out), str(tmp_path / "data"), str(source))
    assert (check.n_train, check.n_test) == (summary.n_train, summary.n_test)
    return draft, spec, summary


@pytest.fixture
def detection_source(tmp_path):
    source = write_detection_competition(tmp_path / "boxes", n_train=12, n_test=4, size=96, file_size=(120, 96),
                                         seed=3)
    shutil.rmtree(source / "answers")
    return source


def test_generated_shapes_detection_drafts_every_detection_field_with_its_reason(detection_source, tmp_path):
    draft, spec, summary = _drafted(detection_source, tmp_path)
    assert (spec.task, spec.labels_csv, spec.id_column) == ("detection", "train.csv", "image_id")
    assert (spec.box_columns, spec.box_format, spec.class_column) == (("x", "y", "w", "h"), "xywh", "class")
    assert spec.classes == ("ellipse", "rectangle", "triangle")
    assert spec.prediction_string == {"box_format": "xywh", "has_class": True}
    assert (spec.submission_label_column, spec.submission_id) == ("PredictionString", "filename")
    assert spec.resolved_metric.name == "coco_map" and spec.flip_invariant is None
    for key in ("task", "box_format", "class_column", "classes", "prediction_string", "metric"):
        assert draft.notes[key], key
    assert "several boxes per image" in draft.notes["task"]
    assert summary.n_train == 12 and summary.n_test == 4  # images without boxes too


def _reshaped(detection_source, source: Path, labels, placeholder: str) -> Path:
    """A copy of the generated boxes folder whose train.csv is `labels(boxes)` (ids as stems, as both Kaggle
    competitions write them) and whose sample writes `placeholder` on every row."""
    shutil.copytree(detection_source, source)
    boxes = pd.read_csv(source / "train.csv").assign(image_id=lambda f: f["image_id"].str.removesuffix(".png"))
    labels(boxes).to_csv(source / "train.csv", index=False)
    sample = pd.read_csv(source / "sample_submission.csv", dtype=str)
    pd.DataFrame({"image_id": sample["image_id"].str.removesuffix(".png"), "PredictionString": placeholder}
                 ).to_csv(source / "sample_submission.csv", index=False)
    return source


def _global_wheat_like(detection_source, tmp_path):
    """Global Wheat's train.csv: image_id, width, height, bbox "[x, y, w, h]", source; an image without wheat
    is in no row; the sample holds a placeholder box on every row."""
    def labels(boxes):
        return pd.DataFrame({"image_id": boxes["image_id"], "width": 120, "height": 96,
                             "bbox": [f"[{x}, {y}, {w}, {h}]" for x, y, w, h in boxes[["x", "y", "w", "h"]].to_numpy()],
                             "source": np.where(np.arange(len(boxes)) % 2, "arvalis_1", "usask_1")})

    return _reshaped(detection_source, tmp_path / "wheat", labels, "1.0 0 0 50 50")


def test_a_global_wheat_like_folder_drafts_a_box_list_column_one_class_and_the_preset(detection_source, tmp_path):
    source = _global_wheat_like(detection_source, tmp_path)
    draft, spec, summary = _drafted(source, tmp_path)
    assert (spec.task, spec.box_columns, spec.box_format) == ("detection", ("bbox",), "xywh")
    assert spec.class_column == "" and spec.classes == ("object",)  # `source` is no class
    assert spec.prediction_string == "global_wheat" and "great_barrier_reef" in draft.notes["prediction_string"]
    assert spec.submission_id == "stem" and "width" in draft.notes["box_format"]
    assert summary.n_train == 12  # the images in no row are indexed without boxes


def _vinbigdata_like(detection_source, tmp_path):
    """VinBigData's train.csv: image_id, class_name, class_id, rad_id, x_min, y_min, x_max, y_max; an image
    without findings has a "No finding" row (class 14) with empty boxes; the sample writes "14 1 0 0 1 1"."""
    def labels(boxes):
        class_id = np.arange(len(boxes)) % 14
        frame = pd.DataFrame({"image_id": boxes["image_id"], "class_name": [VIN_NAMES[k] for k in class_id],
                              "class_id": class_id, "rad_id": [f"R{k % 3 + 1}" for k in range(len(boxes))],
                              "x_min": boxes["x"], "y_min": boxes["y"], "x_max": boxes["x"] + boxes["w"],
                              "y_max": boxes["y"] + boxes["h"]})
        missing = sorted({f"train-3-{k:05d}" for k in range(12)} - set(frame["image_id"]))
        return pd.concat([frame, pd.DataFrame({"image_id": missing, "class_name": "No finding", "class_id": 14,
                                               "rad_id": "R1"})])

    return _reshaped(detection_source, tmp_path / "vin", labels, "14 1 0 0 1 1")


def test_a_vinbigdata_like_folder_drafts_class_ids_and_the_vinbigdata_preset(detection_source, tmp_path):
    source = _vinbigdata_like(detection_source, tmp_path)
    draft, spec, summary = _drafted(source, tmp_path)
    assert (spec.task, spec.box_columns, spec.box_format) == ("detection", ("x_min", "y_min", "x_max", "y_max"),
                                                              "xyxy")
    assert spec.class_column == "class_id" and spec.classes == tuple(str(k) for k in range(14))
    assert "without a box say 14" in draft.notes["class_column"] and "class_name" in draft.notes["class_column"]
    assert spec.prediction_string == "vinbigdata" and "no box has" in draft.notes["prediction_string"]
    assert spec.flip_invariant is None  # class ids are not symbols
    assert summary.n_train == 12


def test_generated_shapes_multiclass_drafts_exclusive_class_masks_from_joined_ids(tmp_path):
    source = write_class_mask_competition(tmp_path / "steel", n_train=12, n_test=4, seed=3)
    shutil.rmtree(source / "answers")
    draft, spec, summary = _drafted(source, tmp_path)
    assert (spec.task, spec.id_column, spec.rle_column, spec.class_column) == ("segmentation", "ImageId_ClassId",
                                                                               "EncodedPixels", "")
    assert (spec.class_masks, spec.classes, spec.resolved_metric.name) == ("exclusive", ("1", "2"), "mean_dice_pairs")
    assert (spec.submission_id_column, spec.submission_label_column) == ("ImageId_ClassId", "EncodedPixels")
    assert "check" in draft.notes["class_masks"] and spec.flip_invariant is None
    assert (summary.n_train, summary.n_test) == (12, 4)


def _clouds_like(source: Path, tmp_path):
    """Understanding Clouds' form: Image_Label `img.png_Fish`, two classes that share pixels (Sugar holds Fish)."""
    clouds = tmp_path / "clouds"
    shutil.copytree(source, clouds)
    rows = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    masks: dict[str, dict[str, np.ndarray]] = {}
    for pair, rle in zip(rows["ImageId_ClassId"], rows["EncodedPixels"]):
        image, _, class_id = pair.rpartition("_")
        masks.setdefault(image, {})[class_id] = decode(rle, (64, 64))
    out = [(f"{image}_{name}", encode(mask)) for image, by_class in masks.items()
           for name, mask in (("Fish", by_class["1"]), ("Sugar", by_class["1"] | by_class["2"]))]
    pd.DataFrame(out, columns=["Image_Label", "EncodedPixels"]).to_csv(clouds / "train.csv", index=False)
    sample = pd.read_csv(source / "sample_submission.csv", dtype=str)
    images = sorted({p.rpartition("_")[0] for p in sample["ImageId_ClassId"]})
    pd.DataFrame({"Image_Label": [f"{i}_{c}" for i in images for c in ("Fish", "Sugar")], "EncodedPixels": "1 1"}
                 ).to_csv(clouds / "sample_submission.csv", index=False)
    return clouds


def test_a_clouds_like_folder_drafts_overlapping_classes_as_written(tmp_path):
    source = write_class_mask_competition(tmp_path / "steel", n_train=12, n_test=4, seed=3)
    shutil.rmtree(source / "answers")
    draft, spec, summary = _drafted(_clouds_like(source, tmp_path), tmp_path)
    assert (spec.id_column, spec.class_masks, spec.classes) == ("Image_Label", "overlapping", ("Fish", "Sugar"))
    assert "Fish and Sugar" in draft.notes["class_masks"]
    assert (summary.n_train, summary.n_test) == (12, 4)


def test_separate_image_and_class_columns_draft_class_column_and_submission_class_column(tmp_path):
    """Severstal's later form: ImageId, ClassId, EncodedPixels rows for the masks only; the sample alike."""
    source = write_class_mask_competition(tmp_path / "steel", n_train=12, n_test=4, seed=3)
    shutil.rmtree(source / "answers")
    rows = pd.read_csv(source / "train.csv", dtype=str, keep_default_na=False)
    image, class_id = zip(*(pair.rpartition("_")[::2] for pair in rows["ImageId_ClassId"]))
    frame = pd.DataFrame({"ImageId": image, "ClassId": class_id, "EncodedPixels": rows["EncodedPixels"]})
    frame[frame["EncodedPixels"] != ""].to_csv(source / "train.csv", index=False)
    sample = pd.read_csv(source / "sample_submission.csv", dtype=str)
    image, class_id = zip(*(pair.rpartition("_")[::2] for pair in sample["ImageId_ClassId"]))
    pd.DataFrame({"ImageId": image, "EncodedPixels": "1 1", "ClassId": class_id}).to_csv(
        source / "sample_submission.csv", index=False)
    draft, spec, summary = _drafted(source, tmp_path)
    assert (spec.id_column, spec.class_column, spec.submission_class_column) == ("ImageId", "ClassId", "ClassId")
    assert (spec.class_masks, spec.classes, spec.submission_label_column) == ("exclusive", ("1", "2"),
                                                                              "EncodedPixels")
    assert summary.n_train == 12  # the images with no mask row too


def test_a_detection_spec_that_does_not_fit_the_rows_is_named_by_the_check(detection_source, tmp_path):
    draft = draft_spec(detection_source)
    draft.set(classes=["ellipse", "rectangle"], class_column="class")
    write_draft(draft, tmp_path / "spec.yaml")
    problems = spec_check(load_competition(str(tmp_path / "spec.yaml")), detection_source).problems
    assert any("triangle" in p and "not among the spec's classes" in p for p in problems), problems
    draft.set(class_column="kind")
    write_draft(draft, tmp_path / "spec2.yaml")
    problems = spec_check(load_competition(str(tmp_path / "spec2.yaml")), detection_source).problems
    assert any("class_column 'kind' is not a column" in p for p in problems), problems


def test_the_readers_of_many_rows_per_image():
    assert joined_images(["a_b.jpg_1", "c.jpg_Fish"]) == ["a_b.jpg", "c.jpg"] and joined_images(["a.jpg"]) is None
    frame = pd.DataFrame({"id": ["a", "a", "b"], "bbox": ["[1, 2, 30, 40]", "[50.5, 6, 3, 4]", ""]})
    assert box_list_column(frame, ["id", "bbox"]) == "bbox"
    numbers = box_numbers(frame, ("bbox",))
    assert numbers.tolist() == [[1, 2, 30, 40], [50.5, 6, 3, 4]]
    assert read_box_format(numbers, "")[0] == "xywh" and read_box_format(numbers[:1], "")[0] == "xyxy"
    assert "CHECK" in read_box_format(numbers, "xyxy")[1]
    masks = pd.DataFrame({"Image_Label": ["i.png_A", "i.png_B"], "EncodedPixels": ["1 5", "4 2"]})
    assert mask_classes(masks, "Image_Label", "EncodedPixels", True).class_masks == "overlapping"
    apart = masks.assign(EncodedPixels=["1 3", "4 2"])
    assert mask_classes(apart, "Image_Label", "EncodedPixels", True).class_masks == "exclusive"
    assert mask_classes(apart.assign(Image_Label="i.png"), "Image_Label", "EncodedPixels", False) is None
    assert no_box_row(pd.Series(["14 1 0 0 1 1"] * 3), 14) == "14 1 0 0 1 1"
    assert no_box_row(pd.Series(["1.0 0 0 50 50"] * 3), 1) == "" and no_box_row(pd.Series(["2 1 0 0 1 1"]), 3) == ""
