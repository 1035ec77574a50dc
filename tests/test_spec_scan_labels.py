"""podium.spec.scan_labels: how the train images of a downloaded folder are labelled (a labels CSV, a folder
per class, or the start of each file name) and where the test images are, on tiny folders of real JPEGs."""

import pytest

from podium.errors import PodiumError
from podium.spec.scan import scan_source
from podium.spec.scan_labels import find_layout
from tests_support import real_demo_jpegs

JPEG = real_demo_jpegs(1)[0]


def _images(folder, names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG)


def test_a_folder_per_class_and_a_sample_naming_the_test_images(tmp_path):
    _images(tmp_path, [f"train/{c}/{k}.jpg" for c in ("cat", "dog") for k in range(3)])
    _images(tmp_path, [f"test/t{k}.jpg" for k in range(4)])
    (tmp_path / "sample_submission.csv").write_text("id,label\n" + "".join(f"t{k},cat\n" for k in range(4)))
    layout = find_layout(scan_source(tmp_path))
    assert (layout.layout, layout.train_dir, layout.classes, layout.test_dir) == ("folder", "train", ["cat", "dog"],
                                                                                    "test")
    assert layout.sample.id_column == "id" and layout.sample.submission_id == "stem" and layout.sample.matched == 4
    assert len(layout.train_images) == 6 and layout.labels is None


def test_a_labels_csv_names_the_train_images_and_its_label_column(tmp_path):
    _images(tmp_path, [f"images/{k:03d}.jpg" for k in range(6)])
    (tmp_path / "train_labels.csv").write_text(
        "image,breed\n" + "".join(f"{k:03d}.jpg,{'ab'[k % 2]}\n" for k in range(6)))
    layout = find_layout(scan_source(tmp_path))
    assert layout.layout == "csv" and layout.train_dir == "images"
    labels = layout.labels
    assert (labels.id_column, labels.label_column, labels.task, labels.n_classes) == ("image", "breed",
                                                                                      "classification", 2)
    assert labels.matched == 6 and labels.how == "file names"


def test_labels_at_the_start_of_file_names(tmp_path):
    _images(tmp_path, [f"train/{c}.{k}.jpg" for c in ("cat", "dog") for k in range(3)])
    layout = find_layout(scan_source(tmp_path))
    assert (layout.layout, layout.train_dir, layout.classes) == ("filename", "train", ["cat", "dog"])
    assert "the text before the first dot" in layout.by_name.note()


def test_images_without_labels_or_no_images_are_refused_with_what_was_seen(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(PodiumError, match="No image files found"):
        find_layout(scan_source(tmp_path))
    _images(tmp_path, [f"train/{k}.jpg" for k in range(4)])
    with pytest.raises(PodiumError, match="Cannot tell how the train images") as caught:
        find_layout(scan_source(tmp_path))
    assert "4 images" in caught.value.received and "train/0.jpg" in caught.value.received
