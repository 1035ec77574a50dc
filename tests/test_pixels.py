"""podium.data.pixels: a CSV of pixel columns becomes a uint8 array (N, H, W) or (N, H, W, 3); a shape that
does not fit the count of pixel columns, or a value that is no gray level, is refused naming what it saw."""

import numpy as np
import pytest

from podium.data import pixels
from podium.errors import PodiumError


def _write(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def test_a_labelled_gray_csv_becomes_rows_of_square_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 3, 3))
    csv = _write(tmp_path / "train.csv", ["label"] + [f"pixel{k}" for k in range(9)],
                 [[k % 2, *images[k].ravel()] for k in range(5)])
    rows = pixels.convert_pixel_csv(csv, tmp_path / "out" / "train.npy", label_column="label", id_column="id")
    assert rows.shape == (5, 3, 3) and rows.labels == ["0", "1", "0", "1", "0"]
    assert rows.ids == ["1", "2", "3", "4", "5"]  # no id column: 1-based row numbers
    array = np.load(rows.array_file)
    assert array.dtype == np.uint8 and np.array_equal(array, images)


def test_an_rgb_shape_from_the_spec_reads_channels_last_and_ids_from_their_column(tmp_path):
    rgb = np.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3)
    csv = _write(tmp_path / "test.csv", ["key"] + [f"pixel_{k}" for k in range(12)],
                 [["a7", *rgb[0].ravel()], ["b9", *rgb[1].ravel()]])
    rows = pixels.convert_pixel_csv(csv, tmp_path / "test.npy", label_column=None, id_column="key",
                                    image_shape=(2, 2, 3))
    assert rows.shape == (2, 2, 2, 3) and rows.ids == ["a7", "b9"] and rows.labels == ["", ""]
    assert np.array_equal(np.load(rows.array_file), rgb)


def test_a_shape_is_resolved_from_the_count_or_refused_naming_it():
    assert pixels.image_shape_of(784, (), "x.csv") == (28, 28)
    assert pixels.image_shape_of(12, (2, 6, 1), "x.csv") == (2, 6)  # one channel: gray
    with pytest.raises(PodiumError, match="12 pixel columns") as caught:
        pixels.image_shape_of(12, (), "x.csv")
    assert "not a square" in str(caught.value) and "image_shape" in caught.value.fix
    with pytest.raises(PodiumError, match=r"image_shape \[5, 5\] does not fit the 12") as caught:
        pixels.image_shape_of(12, (5, 5), "x.csv")
    assert "5 x 5 = 25" in caught.value.received and "[2, 2, 3]" in caught.value.fix  # 12 = 2 x 2 x 3


def test_values_that_are_no_gray_level_are_refused_with_their_row_and_column(tmp_path):
    header = ["label"] + [f"pixel{k}" for k in range(4)]
    for bad, why in (("256", "outside 0..255"), ("0.5", "not a whole number"), ("dark", "not a number")):
        csv = _write(tmp_path / "train.csv", header, [[1, 0, 0, 0, 0], [0, 9, bad, 9, 9]])
        with pytest.raises(PodiumError, match=why) as caught:
            pixels.convert_pixel_csv(csv, tmp_path / "train.npy", label_column="label", id_column="id")
        assert "'pixel1' on CSV row 2" in caught.value.received
        assert not (tmp_path / "train.npy").exists()  # nothing half-written is left


def test_a_missing_label_or_an_empty_label_is_refused(tmp_path):
    csv = _write(tmp_path / "train.csv", ["digit"] + [f"pixel{k}" for k in range(4)], [[1, 0, 0, 0, 0]])
    with pytest.raises(PodiumError, match="no label column 'label'") as caught:
        pixels.convert_pixel_csv(csv, tmp_path / "t.npy", label_column="label", id_column="id")
    assert "'digit'" in caught.value.received
    csv = _write(tmp_path / "train.csv", ["label"] + [f"pixel{k}" for k in range(4)],
                 [[1, 0, 0, 0, 0], ["", 1, 1, 1, 1]])
    with pytest.raises(PodiumError, match="1 rows of .* have no label") as caught:
        pixels.convert_pixel_csv(csv, tmp_path / "t.npy", label_column="label", id_column="id")
    assert "CSV rows '2'" in caught.value.received


def test_rows_read_in_chunks_fill_the_whole_array(tmp_path, monkeypatch):
    monkeypatch.setattr(pixels, "CHUNK_ROWS", 3)  # 7 rows: chunks of 3, 3 and 1
    images = np.arange(7 * 4).reshape(7, 2, 2) % 256
    csv = _write(tmp_path / "train.csv", ["label"] + [f"pixel{k}" for k in range(4)],
                 [[k, *images[k].ravel()] for k in range(7)])
    rows = pixels.convert_pixel_csv(csv, tmp_path / "t.npy", label_column="label", id_column="id")
    assert rows.labels == [str(k) for k in range(7)] and np.array_equal(np.load(rows.array_file), images)


def test_a_spec_whose_csv_is_absent_is_told_which_field_names_it(tmp_path):
    from podium.data.competitions import load_competition

    spec = load_competition("demo")
    (tmp_path / "other.csv").write_text("a\n1\n")
    with pytest.raises(PodiumError, match="The test CSV of competition 'demo' does not exist") as caught:
        pixels.pixel_csv_rows(spec, tmp_path, "test")
    assert "other.csv" in caught.value.received and "test_csv" in caught.value.fix
