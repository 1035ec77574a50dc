"""podium.spec.scan_pixels and podium.spec.draft_pixels: a folder whose images are CSV rows of pixel<N> columns
(a train CSV with a label, a test CSV without, a sample) is recognised and drafted as a pixels spec."""

import numpy as np

from podium.spec.draft_pixels import draft_pixels
from podium.spec.scan import scan_source
from podium.spec.scan_pixels import find_pixel_csvs, pixel_csv, pixel_ids, pixel_label_column, pixel_sample, pixel_shape


def _pixel_folder(tmp_path, n_pixels=16, train_rows=6, test_rows=3, test_ids=False):
    rng = np.random.default_rng(0)
    columns = ",".join(f"pixel{k}" for k in range(n_pixels))

    def rows(n):
        return [",".join(map(str, rng.integers(0, 256, n_pixels))) for _ in range(n)]

    (tmp_path / "train.csv").write_text(f"label,{columns}\n" + "".join(f"{k % 3},{r}\n"
                                                                       for k, r in enumerate(rows(train_rows))))
    head, cells = ("key,", [f"k{k}," for k in range(test_rows)]) if test_ids else ("", [""] * test_rows)
    (tmp_path / "test.csv").write_text(f"{head}{columns}\n" + "".join(f"{c}{r}\n" for c, r in zip(cells,
                                                                                                    rows(test_rows))))
    ids = [f"k{k}" for k in range(test_rows)] if test_ids else range(1, test_rows + 1)
    (tmp_path / "sample_submission.csv").write_text("ImageId,Label\n" + "".join(f"{i},0\n" for i in ids))
    return scan_source(tmp_path)


def test_the_train_and_test_pixel_csvs_and_their_sample_are_found(tmp_path):
    view = _pixel_folder(tmp_path)
    train, test = find_pixel_csvs(view)
    assert (train.file.rel, test.file.rel, train.rows, test.rows) == ("train.csv", "test.csv", 6, 3)
    assert len(train.pixel_columns) == 16 and pixel_label_column(train) == "label" and pixel_label_column(test) == ""
    sample = pixel_sample(view, test)
    assert sample.file.rel == "sample_submission.csv" and sample.ids == ["1", "2", "3"]
    column, how = pixel_ids(test, sample)
    assert column == "id" and "1-based row numbers" in how and not how.startswith("CHECK")


def test_a_test_id_column_holding_the_samples_ids_is_named(tmp_path):
    view = _pixel_folder(tmp_path, test_ids=True)
    train, test = find_pixel_csvs(view)
    assert pixel_ids(test, pixel_sample(view, test))[0] == "key"


def test_too_few_pixel_columns_are_a_table_not_images(tmp_path):
    view = _pixel_folder(tmp_path, n_pixels=9)
    assert find_pixel_csvs(view) is None and pixel_csv(view.find("train.csv")) is None


def test_the_shape_follows_the_count_of_pixel_columns():
    assert pixel_shape(784) == ([28, 28], "784 pixel columns = 28 x 28: square gray images")
    shape, how = pixel_shape(3072)
    assert shape == [32, 32, 3] and "GUESSED" in how
    assert pixel_shape(20)[0] == [] and pixel_shape(20)[1].startswith("CHECK")


def test_the_draft_of_a_pixels_folder(tmp_path):
    view = _pixel_folder(tmp_path)
    train, test = find_pixel_csvs(view)
    draft = draft_pixels(view, train, test, tmp_path, "digits")
    values = {key: field.value for key, field in draft.fields.items()}
    assert values["layout"] == "pixels" and values["task"] == "classification"
    assert (values["labels_csv"], values["test_csv"], values["label_column"]) == ("train.csv", "test.csv", "label")
    assert values["image_shape"] == [4, 4] and values["id_column"] == "id"
    assert (values["sample_submission"], values["submission_id_column"], values["submission_label_column"]) == (
        "sample_submission.csv", "ImageId", "Label")
    assert set(values["archives"]) == {"train.csv", "test.csv", "sample_submission.csv"}
    assert "3 classes" in draft.fields["label_column"].reason
    assert "image_size: 8" in draft.images["advice"] and "6 train and 3 test images" in draft.images["summary"]
