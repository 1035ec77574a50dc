"""Submission values compared as written text, and how messages name them (podium.submission.text)."""

from __future__ import annotations

import math

import pandas as pd

from podium.submission.text import (as_text, column_text, did_you_mean, few, few_quoted, numbers_only, parse_numbers,
                                    quoted_names, repeated_values, text_or_none)


def test_ids_are_compared_as_written():
    assert as_text("007") == "007" and as_text(None) == "" and as_text(float("nan")) == "" and as_text(7) == "7"
    assert text_or_none(float("nan")) is None and text_or_none("0") == "0"
    assert column_text(pd.Series(["1", None, "b"])) == ["1", "", "b"]
    assert repeated_values(["a", "b", "a", "c", "b"]) == ["a", "b"]


def test_numbers_parse_as_a_metric_reads_them():
    parsed = parse_numbers(["1.5", "", "cat", "nan", "inf"])
    assert parsed[:3] == [1.5, None, None] and math.isnan(parsed[3]) and parsed[4] == math.inf
    assert numbers_only(pd.Series(["0.5", "", "1"])) and not numbers_only(pd.Series(["0.5", "cat"]))
    assert not numbers_only(pd.Series(["", " "]))  # nothing written is not a column of numbers


def test_messages_name_a_few_and_the_nearest_class():
    assert few(list(range(7))) == "0, 1, 2, 3, 4 and 2 more" and few_quoted(["a"]) == "'a'"
    assert quoted_names(["id", 3]) == "['id', '3']"
    assert did_you_mean("Cat", ["cat", "dog"]) == "; did you mean 'cat'?" and did_you_mean("zebra", ["cat"]) == ""
