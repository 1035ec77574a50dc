"""PredictionString parsing and writing (podium.submission.prediction_string) in the three Kaggle formats:
round trips, and every malformed row refused naming the row, what was expected and what was found."""

import math

import numpy as np
import pytest

from podium.errors import PodiumError
from podium.submission.prediction_string import FORMATS, Detections, StringFormat, parse, string_format, write


def test_global_wheat_reads_score_then_xywh_pixels():
    found = parse("0.9 10 20 30 40 0.5 0 0 5.5 6", "global_wheat", row_id="51f1be19e")
    assert found.boxes.tolist() == [[10, 20, 40, 60], [0, 0, 5.5, 6]]
    assert found.scores.tolist() == [0.9, 0.5] and found.classes is None


def test_vinbigdata_reads_class_score_xyxy_and_its_no_finding_row():
    found = parse("3 0.8 100 120 300 340 14 0.2 0 0 1 1", "vinbigdata", row_id="x")
    assert found.classes.tolist() == [3, 14] and found.scores.tolist() == [0.8, 0.2]
    assert found.boxes.tolist() == [[100, 120, 300, 340], [0, 0, 1, 1]]
    assert write(Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)), "vinbigdata") == "14 1 0 0 1 1"
    no_finding = parse("14 1 0 0 1 1", "vinbigdata")
    assert no_finding.classes.tolist() == [14] and no_finding.boxes.tolist() == [[0, 0, 1, 1]]


def test_great_barrier_reef_reads_conf_then_xywh():
    found = parse("0.5 559 213 50 32", "great_barrier_reef", image_size=(1280, 720))
    assert found.boxes.tolist() == [[559, 213, 609, 245]] and found.scores.tolist() == [0.5]


@pytest.mark.parametrize("text", ["", "   ", None, float("nan")])
def test_an_empty_row_has_no_boxes(text):
    found = parse(text, "global_wheat")
    assert len(found) == 0 and found.boxes.shape == (0, 4)
    assert write(found, "global_wheat") == "" and write(found, "great_barrier_reef") == ""


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_write_then_parse_round_trips_in_every_format(name):
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 500, (6, 2)).round(2)
    boxes = np.concatenate([xy, xy + rng.uniform(1, 200, (6, 2)).round(2)], axis=1)
    scores = rng.uniform(0, 1, 6).round(4)
    classes = rng.integers(0, 14, 6)
    detections = Detections(boxes, scores, classes)
    text = write(detections, name)
    back = parse(text, name, row_id="img", image_size=(1000, 1000))
    order = np.argsort(-scores, kind="mergesort")  # written best first
    np.testing.assert_allclose(back.boxes, boxes[order], atol=1e-3)
    np.testing.assert_allclose(back.scores, scores[order], atol=1e-4)
    if FORMATS[name].has_class:
        assert back.classes.tolist() == classes[order].tolist()
    assert write(back, name) == text  # and the text is stable


def test_written_numbers_are_short():
    detections = Detections(np.array([[10.0, 20.0, 40.0, 60.5]]), np.array([0.91234567]))
    assert write(detections, "global_wheat") == "0.9123 10 20 30 40.5"
    assert write(detections, "global_wheat", decimals=2) == "0.91 10 20 30 40.5"


def test_a_format_record_describes_its_fields():
    assert FORMATS["global_wheat"].pattern == "score x y w h"
    assert FORMATS["vinbigdata"].pattern == "class score x1 y1 x2 y2"
    last = StringFormat("xyxy", score_first=False)
    assert last.pattern == "x1 y1 x2 y2 score"
    assert parse("1 2 3 4 0.5", last).boxes.tolist() == [[1, 2, 3, 4]]
    assert string_format(last) is last
    with pytest.raises(PodiumError, match="Unknown box format 'cxcywh'"):
        StringFormat("cxcywh")
    with pytest.raises(PodiumError, match="Unknown PredictionString format 'wheat'"):
        parse("", "wheat")
    with pytest.raises(PodiumError, match="needs a class per box"):
        write(Detections(np.array([[0, 0, 1, 1]]), np.array([0.5])), "vinbigdata")


@pytest.mark.parametrize("text, name, size, match, found", [
    ("0.9 10 20 30", "global_wheat", None, "field count", "4 fields: 0.9 10 20 30"),
    ("0.9 10 20 30 40 0.5", "global_wheat", None, "field count", "6 fields"),
    ("0.9 10 twenty 30 40", "global_wheat", None, r"not a number \(y of box 1\)", "'twenty'"),
    ("0.9 10 20 30 40 0.8 1 2 3 nan", "global_wheat", None, r"not a number \(h of box 2\)", "'nan'"),
    ("1.2 10 20 30 40", "global_wheat", None, "score outside 0..1", "1.2"),
    ("-0.1 10 20 30 40", "great_barrier_reef", None, "score outside 0..1", "-0.1"),
    ("0.9 10 20 -3 40", "global_wheat", None, "negative width or height", "box 1: 10 20 -3 40"),
    ("3 0.9 100 100 50 200", "vinbigdata", None, "negative width or height", "box 1: 100 100 50 200"),
    ("2.5 0.9 0 0 10 10", "vinbigdata", None, "not a non-negative integer", "2.5"),
    ("-1 0.9 0 0 10 10", "vinbigdata", None, "not a non-negative integer", "-1"),
    ("0.9 1000 20 30 40", "global_wheat", (1024, 1024), "outside the image", "box 1: xyxy 1000 20 1030 60"),
    ("0.9 -1 20 30 40", "great_barrier_reef", (1280, 720), "outside the image", "xyxy -1 20 29 60"),
    ("3 0.9 0 0 10 800", "vinbigdata", (640, 640), "outside the image", "x in 0..640, y in 0..640"),
])
def test_a_malformed_row_names_the_row_what_was_expected_and_what_was_found(text, name, size, match, found):
    with pytest.raises(PodiumError, match=match) as caught:
        parse(text, name, row_id="img_42", image_size=size)
    message = str(caught.value)
    assert "'img_42'" in message and "Expected:" in message and found in message


def test_a_box_on_the_image_edge_is_inside():
    assert len(parse("0.9 0 0 1024 1024", "global_wheat", image_size=(1024, 1024))) == 1
    assert math.isclose(parse("0 0 0 0 0", "global_wheat").scores[0], 0.0)
