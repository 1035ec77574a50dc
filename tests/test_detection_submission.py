"""Detection submissions written from fraction boxes into the sample's ids, order and string format in pixels,
read back by the format's own parser; every malformed frame refused, naming the row, before a byte is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.submission.detections import (class_codes, detection_frame, detection_string,
                                          detection_submission_problems, rehearsal_problems,
                                          validate_detection_submission, write_detection_submission)
from podium.submission.prediction_string import FORMATS, parse

SPEC = load_competition("shapes-detection")
CLASSES = ["ellipse", "rectangle", "triangle"]
SAMPLE = pd.DataFrame({"image_id": ["b.png", "a.png", "c.png"], "PredictionString": ""})
SHAPES = {"a.png": (96, 120), "b.png": (96, 120), "c.png": (50, 40)}  # (height, width)
DETECTIONS = {"a.png": np.array([[2, 0.9, 0.1, 0.2, 0.5, 0.6], [0, 0.3, 0.5, 0.5, 1.2, 1.0]]),
              "b.png": np.zeros((0, 6))}  # c.png: not predicted (an undecodable image)


def test_boxes_are_written_in_pixels_of_each_image_in_the_samples_order():
    frame = detection_frame(SAMPLE, SPEC, CLASSES, DETECTIONS, SHAPES)
    assert frame["image_id"].tolist() == ["b.png", "a.png", "c.png"] and list(frame.columns) == list(SAMPLE.columns)
    assert frame["PredictionString"].tolist()[0] == "" and frame["PredictionString"].tolist()[2] == ""
    parsed = parse(frame["PredictionString"][1], SPEC.resolved_prediction_string, "a.png", image_size=(120, 96))
    np.testing.assert_allclose(parsed.boxes, [[12, 19.2, 60, 57.6], [60, 48, 120, 96]])  # clipped at the edge
    np.testing.assert_allclose(parsed.scores, [0.9, 0.3])
    assert parsed.classes.tolist() == [2, 0]
    assert frame["PredictionString"][1].startswith("2 0.9 12 19.2 48 38.4 ")  # class score x y w h
    assert not detection_submission_problems(frame, SAMPLE, SPEC, CLASSES, SHAPES)


def test_numeric_class_names_are_written_as_themselves_and_no_box_as_the_formats_row():
    assert class_codes(["0", "2", "10"]) == [0, 2, 10] and class_codes(CLASSES) == [0, 1, 2]
    form = FORMATS["vinbigdata"]
    text = detection_string(np.array([[2, 0.5, 0, 0, 0.5, 0.5]]), (10, 20), form, [0, 2, 10])
    assert text == "10 0.5 0 0 10 5"
    assert detection_string(np.zeros((0, 6)), (10, 20), form, [0]) == "14 1 0 0 1 1"


def _frame(*strings: str, ids=("b.png", "a.png", "c.png")) -> pd.DataFrame:
    return pd.DataFrame({"image_id": list(ids), "PredictionString": list(strings)})


@pytest.mark.parametrize("frame, words", [
    (_frame("0 0.5 1 1 10", "", ""), "field count"),
    (_frame("0 0.5 1 1 10 x", "", ""), "not a number"),
    (_frame("0 1.5 1 1 10 10", "", ""), "score outside 0..1"),
    (_frame("", "1 0.5 100 1 30 10", ""), "outside the image"),  # x2 = 130 > 120
    (_frame("", "", "1 0.5 1 1 39 49"), ""),  # inside c.png's 40 x 50: no problem
    (_frame("5 0.5 1 1 10 10", "", ""), "class outside [0, 1, 2]"),
    (_frame("", "", "", ids=("b.png", "a.png", "d.png")), "not in the sample"),
    (_frame("", "", "", ids=("a.png", "b.png", "c.png")), "different order"),
    (_frame("", "", "", ids=("b.png", "b.png", "c.png")), "more than one row"),
    (_frame("", "", "").rename(columns={"PredictionString": "preds"}), "missing ['PredictionString']"),
])
def test_each_malformed_frame_is_one_named_problem(frame, words):
    problems = detection_submission_problems(frame, SAMPLE, SPEC, CLASSES, SHAPES)
    if not words:
        assert problems == []
        return
    assert len(problems) >= 1 and words in " ".join(problems)


def test_the_rehearsal_checks_all_but_the_image_size():
    outside = _frame("", "1 0.5 100 1 30 10", "")
    assert rehearsal_problems(outside, SAMPLE, SPEC, CLASSES) == []
    assert "score outside" in " ".join(rehearsal_problems(_frame("0 2 1 1 1 1", "", ""), SAMPLE, SPEC, CLASSES))


def test_an_empty_row_where_the_format_writes_a_no_box_row_is_a_problem(tmp_path):
    text = (tmp_path / "vin.yaml")
    text.write_text("slug: vin\ntask: detection\nlayout: csv\nlabels_csv: train.csv\nid_column: image_id\n"
                    "class_column: class_id\nbox_columns: [x_min, y_min, x_max, y_max]\nprediction_string: vinbigdata\n"
                    "submission_id_column: image_id\nsubmission_label_column: PredictionString\n"
                    "metric: {name: map_at_iou, iou: 0.4}\n")
    vin = load_competition(str(text))
    classes = [str(k) for k in range(14)]
    frame = _frame("14 1 0 0 1 1", "", "3 0.5 1 1 10 10")
    problems = detection_submission_problems(frame, SAMPLE, vin, classes, SHAPES)
    assert len(problems) == 1 and "'a.png'" in problems[0] and "14 1 0 0 1 1" in problems[0]


def test_an_invalid_frame_is_never_written_and_an_older_file_survives(tmp_path):
    path = tmp_path / "submission.csv"
    good = detection_frame(SAMPLE, SPEC, CLASSES, DETECTIONS, SHAPES)
    write_detection_submission(path, good, SAMPLE, SPEC, CLASSES, SHAPES)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert written.equals(good.astype(str))
    bad = _frame("0 0.5 1 1 10", "", "")
    with pytest.raises(PodiumError, match="detection submission") as err:
        write_detection_submission(path, bad, SAMPLE, SPEC, CLASSES, SHAPES)
    assert "'b.png'" in str(err.value) and "class score x y w h" in str(err.value)
    assert pd.read_csv(path, dtype=str, keep_default_na=False).equals(written)
    with pytest.raises(PodiumError):
        validate_detection_submission(bad, SAMPLE, SPEC, CLASSES, SHAPES)
