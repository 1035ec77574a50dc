"""Ids, labels and numbers of a submission compared as the text written in the CSV ("001" is not "1"), and
how a message names them: a few examples and how many more, names quoted, the nearest class."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any, Iterable, Sequence

import pandas as pd

SHOWN = 5  # how many example ids/labels a message names before saying "and N more"


def is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def text_or_none(value: Any) -> str | None:
    return None if is_missing(value) else str(value)


def as_text(value: Any) -> str:
    """Ids and labels compared as written text; a missing value becomes "" so it reads as empty."""
    return "" if is_missing(value) else str(value)


def column_text(column: pd.Series) -> list[str]:
    return [as_text(value) for value in column.tolist()]


def repeated_values(values: Iterable[str]) -> list[str]:
    counts = Counter(values)
    return [value for value, count in counts.items() if count > 1]


def few(values: Sequence[Any]) -> str:
    shown = ", ".join(str(value) for value in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def few_quoted(values: Sequence[str]) -> str:
    return few([repr(value) for value in values])


def quoted_names(columns: Iterable[Any]) -> str:
    return "[" + ", ".join(repr(str(name)) for name in columns) + "]"


def did_you_mean(value: str, classes: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(classes), n=1, cutoff=0.6)
    if not close:
        lowered = [name for name in classes if name.lower() == value.lower()]
        close = lowered[:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_numbers(texts: Sequence[str]) -> list[float | None]:
    """Each text as a float, None where it is empty or not a number ("nan" and "inf" parse: they are numbers
    a metric cannot read, reported as such)."""
    out: list[float | None] = []
    for text in texts:
        try:
            out.append(float(text) if text else None)
        except ValueError:
            out.append(None)
    return out


def numbers_only(column: pd.Series) -> bool:
    """Every non-empty cell of a sample's column is a number (a sample's placeholder may be empty)."""
    texts = [text for text in column_text(column) if text.strip()]
    return bool(texts) and all(number is not None for number in parse_numbers(texts))
