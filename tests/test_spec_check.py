"""podium.spec.check: a spec checked against a downloaded folder without unpacking it; every problem named with
its fix, on tiny folders (a folder per class, pixel CSVs) and specs drafted from them or changed by one field."""

import dataclasses

import numpy as np

from podium.data.competitions import CompetitionSpec
from tests_support import real_demo_jpegs, spec_check

JPEG = real_demo_jpegs(1)[0]


def _folder_source(tmp_path):
    for name in [f"train/{c}/{k}.jpg" for c in ("cat", "dog") for k in range(3)] + ["train/dog/solo/x.jpg",
                                                                                   "valid/cat/v.jpg",
                                                                                   "valid/dog/v.jpg",
                                                                                   "test/t0.jpg", "test/t1.jpg"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG)
    (tmp_path / "sample_submission.csv").write_text("id,label\nt0,cat\nt1,cat\n")
    return tmp_path


FOLDER = CompetitionSpec(slug="pets", layout="folder", archives=(), train_dir="train", test_dir="test",
                         sample_submission="sample_submission.csv", submission_id_column="id",
                         submission_label_column="label")


def test_a_fitting_folder_spec_passes_with_counts_classes_and_notes(tmp_path):
    check = spec_check(FOLDER, _folder_source(tmp_path))
    assert check.ok, check.problems
    assert (check.n_train, check.n_test, check.classes) == (7, 2, ["cat", "dog"])
    assert any("valid" in note and "move those images" in note for note in check.notes)


def test_each_wrong_field_is_a_problem_with_its_fix(tmp_path):
    source = _folder_source(tmp_path)
    cases = {"archives": ("labels.csv",), "train_dir": "pictures", "test_dir": "train/cat",
             "submission_id_column": "image_id", "flip_invariant": "yes"}
    expected = {"archives": "archives lists 'labels.csv'", "train_dir": "train_dir 'pictures' holds no images",
                "test_dir": "lies inside train_dir", "submission_id_column": "image_id",
                "flip_invariant": "flip_invariant is 'yes'"}
    for field, value in cases.items():
        problems = spec_check(dataclasses.replace(FOLDER, **{field: value}), source).problems
        assert any(expected[field] in p and "Fix:" in p for p in problems), (field, problems)


def _pixel_source(tmp_path, test_rows=3):
    rng = np.random.default_rng(0)
    columns = ",".join(f"pixel{k}" for k in range(16))
    train = "".join(f"{k % 2}," + ",".join(map(str, rng.integers(0, 256, 16))) + "\n" for k in range(5))
    (tmp_path / "train.csv").write_text(f"label,{columns}\n{train}")
    row = ",".join(["7"] * 16)
    (tmp_path / "test.csv").write_text(f"{columns}\n" + f"{row}\n" * test_rows)
    (tmp_path / "sample_submission.csv").write_text("ImageId,Label\n1,0\n2,0\n3,0\n")
    return tmp_path


PIXELS = CompetitionSpec(slug="digits", layout="pixels", archives=("train.csv", "test.csv"), labels_csv="train.csv",
                         test_csv="test.csv", label_column="label", image_shape=(4, 4),
                         sample_submission="sample_submission.csv", submission_id_column="ImageId",
                         submission_label_column="Label")


def test_a_pixels_spec_is_checked_against_the_csv_headers(tmp_path):
    source = _pixel_source(tmp_path)
    check = spec_check(PIXELS, source)
    assert check.ok, check.problems
    assert (check.n_train, check.n_test, check.classes) == (5, 3, ["0", "1"])
    problems = spec_check(dataclasses.replace(PIXELS, image_shape=(2, 4)), source).problems
    assert any("16 pixel columns" in p and "image_shape: [4, 4]" in p for p in problems), problems
    problems = spec_check(dataclasses.replace(PIXELS, label_column="digit"), source).problems
    assert any("no label column 'digit'" in p for p in problems), problems
    problems = spec_check(dataclasses.replace(PIXELS, test_csv="missing.csv"), source).problems
    assert any("test_csv 'missing.csv' is not a CSV of pixel<N> columns" in p for p in problems), problems


def test_sample_ids_that_name_no_test_row_are_a_problem(tmp_path):
    source = _pixel_source(tmp_path)
    (source / "sample_submission.csv").write_text("ImageId,Label\n1,0\n2,0\n9,0\n")
    problems = spec_check(PIXELS, source).problems
    assert any("1 sample submission ids name no test row (9)" in p for p in problems), problems
