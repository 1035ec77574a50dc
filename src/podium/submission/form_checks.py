"""Does the sample's shape fit the spec's submission_format? A sample's values are placeholders, so only what
a placeholder still shows is read: text where the form writes numbers, numbers outside 0..1 where it writes
probabilities, a label column where it writes a column per class, a different count of ranked labels than k.
Read by podium.submission.validate before anything trains, and by `make spec`'s check."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from podium.errors import PodiumError
from podium.scoring.forms import positive_index
from podium.submission.text import (SHOWN, column_text, did_you_mean, few_quoted, numbers_only, parse_numbers,
                                    quoted_names)


def class_column_problems(columns: Sequence[str], classes: Sequence[str]) -> list[str]:
    """The sample's columns beyond the id against the model's classes: each names one class, each class has one."""
    problems = []
    unknown = [name for name in columns if name not in set(classes)]
    if unknown:
        named = [f"{name!r}{did_you_mean(name, classes)}" for name in unknown[:SHOWN]]
        more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        problems.append(f"{len(unknown)} sample column(s) name no class: {', '.join(named)}{more} "
                        f"(classes: {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''})")
    absent = [name for name in classes if name not in set(columns)]
    if absent:
        problems.append(f"{len(absent)} class(es) have no column in the sample: {few_quoted(absent)}")
    return problems


def sample_form_problems(sample: pd.DataFrame, spec, classes: Sequence[str] | None = None) -> list[str]:
    """How the sample's shape disagrees with the spec's submission_format (and, given them, with the classes)."""
    form = spec.resolved_submission_format
    label_column = spec.submission_label_column
    problems: list[str] = []
    if form == "probabilities":
        others = [name for name in sample.columns if name != spec.submission_id_column]
        problems += _class_columns_problems(sample, others, classes)
    elif form in ("probability", "number") and label_column in sample.columns:
        problems += _one_number_problems(sample[label_column], label_column, form)
    elif form == "top_k" and label_column in sample.columns:
        problems += _ranking_problems(sample[label_column], label_column, spec.resolved_top_k)
    return problems + _positive_class_problems(spec, form, classes)


def _class_columns_problems(sample: pd.DataFrame, others: list[str], classes: Sequence[str] | None) -> list[str]:
    """probabilities: a column of numbers per class (named as the classes, given them)."""
    problems = []
    if len(others) < 2:
        kind = "numbers" if others and numbers_only(sample[others[0]]) else "text labels"
        problems.append(f"the sample has {len(others)} column(s) beyond the id ({quoted_names(others)}, holding "
                        f"{kind}), not a column per class: a "
                        f"{'probability' if kind == 'numbers' else 'label'}-form sample")
    else:
        text = [name for name in others if not numbers_only(sample[name])]
        if text:
            problems.append(f"column(s) {quoted_names(text)} hold text, not probabilities")
    if classes is not None and len(others) >= 2:
        problems += class_column_problems(others, classes)
    return problems


def _one_number_problems(column: pd.Series, label_column: str, form: str) -> list[str]:
    """probability or number: numbers, not text; a probability's within 0..1."""
    written = [text for text in column_text(column) if text.strip()]
    if written and not numbers_only(column):
        labels = list(dict.fromkeys(text for text in written if parse_numbers([text])[0] is None))
        return [f"column {label_column!r} holds text such as {few_quoted(labels)}, not "
                f"{'a probability' if form == 'probability' else 'a number'}: a label-form sample "
                f"(submission_format: label, a metric such as accuracy)"]
    if written and form == "probability":
        high = max(number for number in parse_numbers(written) if number is not None)
        low = min(number for number in parse_numbers(written) if number is not None)
        if low < 0 or high > 1:
            return [f"column {label_column!r} holds numbers outside 0..1 (from {low:g} to {high:g}): "
                    "a number (regression) sample, not a probability"]
    return []


def _ranking_problems(column: pd.Series, label_column: str, k: int) -> list[str]:
    """top_k: k ranked class names per row, not one number."""
    counts = {len(text.split()) for text in column_text(column) if text.strip()}
    if numbers_only(column) and counts == {1}:
        return [f"column {label_column!r} holds one number per row, not {k} ranked class names"]
    if len(counts) == 1 and (found := counts.pop()) > 1 and found != k:
        return [f"the sample's rows hold {found} space-separated labels, the spec's k is {k}"]
    return []


def _positive_class_problems(spec, form: str, classes: Sequence[str] | None) -> list[str]:
    """positive_class names one of the classes (a probability form needs one it can find)."""
    if form == "probability" and classes is not None:
        try:
            positive_index(spec.positive_class, classes)
        except PodiumError as err:
            return [f"{err.what} (expected {err.expected})"]
    elif spec.positive_class and classes is not None and spec.positive_class not in classes:
        return [f"positive_class {spec.positive_class!r} is not a class (classes: {', '.join(classes[:10])})"]
    return []
