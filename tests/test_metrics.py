"""Metrics against values worked out by hand on a small crafted example.

y_true = [0, 0, 0, 1, 1, 2], y_pred = [0, 0, 1, 1, 2, 2], four classes (class 3 never occurs):
  class 0: TP 2, FP 0, FN 1 -> precision 1,   recall 2/3, F1 0.8,  support 3
  class 1: TP 1, FP 1, FN 1 -> precision 1/2, recall 1/2, F1 1/2,  support 2
  class 2: TP 1, FP 1, FN 0 -> precision 1/2, recall 1,   F1 2/3,  support 1
  class 3: nothing          -> 0, 0, 0 (zero_division=0),          support 0
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.scoring.metrics import accuracy, classification_table, confusion, macro_f1

Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]
NAMES = ["cat", "dog", "frog", "ship"]


def test_accuracy_is_the_share_of_exact_matches():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert isinstance(accuracy(np.array(Y_TRUE), np.array(Y_PRED)), float)
    assert accuracy([1, 2], [1, 2]) == 1.0


def test_confusion_has_true_rows_predicted_columns_and_every_class():
    expected = np.array([[2, 1, 0, 0],
                         [0, 1, 1, 0],
                         [0, 0, 1, 0],
                         [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion(Y_TRUE, Y_PRED, 4), expected)


def test_classification_table_matches_hand_computed_values():
    table = classification_table(Y_TRUE, Y_PRED, NAMES)
    assert list(table.index) == NAMES + ["macro avg", "weighted avg"]
    assert list(table.columns) == ["precision", "recall", "f1", "support"]
    expected = pd.DataFrame(
        {"precision": [1, 0.5, 0.5, 0, 2 / 4, (3 * 1 + 2 * 0.5 + 1 * 0.5) / 6],
         "recall": [2 / 3, 0.5, 1, 0, (2 / 3 + 0.5 + 1) / 4, 4 / 6],
         "f1": [0.8, 0.5, 2 / 3, 0, (0.8 + 0.5 + 2 / 3) / 4, (3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6],
         "support": [3, 2, 1, 0, 6, 6]},
        index=pd.Index(NAMES + ["macro avg", "weighted avg"], name="class"))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, atol=1e-12)
    assert table["support"].dtype == np.int64
    assert table["precision"].dtype == np.float64


def test_macro_f1_counts_absent_classes_only_when_told_how_many_there_are():
    assert macro_f1(Y_TRUE, Y_PRED, num_classes=4) == pytest.approx((0.8 + 0.5 + 2 / 3) / 4)
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_length_mismatch_is_refused():
    with pytest.raises(PodiumError, match="differ in length") as info:
        accuracy([0, 1, 2], [0, 1])
    assert "3 true labels, 2 predictions" in info.value.received


def test_empty_inputs_are_refused():
    with pytest.raises(PodiumError, match="Nothing to score"):
        accuracy([], [])


def test_probabilities_are_refused_with_the_argmax_hint():
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(PodiumError, match="1-D") as info:
        accuracy([0, 1], probs)
    assert "argmax" in info.value.fix


def test_fractional_values_are_refused_but_integral_floats_accepted():
    with pytest.raises(PodiumError, match="not class indices"):
        confusion([0, 1], [0.4, 1.0], 2)
    assert accuracy(np.array([0.0, 1.0]), [0, 1]) == 1.0


def test_class_index_outside_the_class_list_is_refused_not_dropped():
    with pytest.raises(PodiumError, match=r"y_pred has class indices outside 0..3") as info:
        classification_table([0, 1], [0, 4], NAMES)
    assert "[4]" in info.value.received
    with pytest.raises(PodiumError, match="y_true"):
        confusion([-1, 0], [0, 0], 2)
