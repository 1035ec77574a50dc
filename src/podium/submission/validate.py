"""Submissions that are right the first time: every problem is found before a byte is written.

The sample submission is the contract. Ids, their spelling ("001" is not "1") and their order come from
it, never from the file system: a test set read in directory order once turned 0.97 into 0.56. An invalid
submission is never written, and a previous file at the same path survives a failed attempt.

The sample also shows the submission's *form* (the spec's submission_format): `label` (one class name),
`probability` (one column, P(positive_class)), `probabilities` (a column per class, named and ordered as the
sample names them), `top_k` (k space-separated class names, best first), `number` (regression). The form
checks here run before a byte is written; `number_problems` is the generic finite/in-range check every
numeric form uses (`number_submission_problems` adds the sample's columns, ids and order for `number`).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.io import atomic_path
from podium.scoring.forms import positive_index, top_k_indices
from podium.submission.form_checks import class_column_problems, sample_form_problems
from podium.submission.text import (SHOWN, as_text, column_text, did_you_mean, few, few_quoted, numbers_only,
                                    parse_numbers, quoted_names, repeated_values, text_or_none)

CLASS_FORMS = ("label", "probability", "probabilities", "top_k")  # what a one-label-per-image model can write
ROW_SUM_TOLERANCE = 1e-3  # a probabilities row written with 8 significant digits sums to 1 well within this
ROW_SUM_METRICS = ("log_loss",)  # metrics whose definition reads each row as a distribution over the classes


# ----------------------------------------------------------------------------------------- reading


def read_sample_submission(path: str | os.PathLike, id_column: str, label_column: str) -> pd.DataFrame:
    """The competition's sample submission, ids kept exactly as written (all text, nothing parsed as NaN).

    A sample without the expected columns, with no rows or with repeated ids is a broken competition file;
    building a submission on it would only move the failure to the leaderboard, so it is refused here.
    """
    return _read_sample(Path(path), id_column, [label_column])


def read_competition_sample(path: str | os.PathLike, spec, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """The sample read with the columns the spec's submission_format writes (the id and the label column; the
    id and a column per class for `probabilities`), and checked against that form: a sample whose shape says
    another form (text labels where the spec says probability, one label column where it says a column per
    class) is refused here, before anything trains or predicts. With `classes`, the class columns and
    positive_class are checked against them too."""
    path, form = Path(path), spec.resolved_submission_format
    values = [] if form == "probabilities" else [spec.submission_label_column]
    frame = _read_sample(path, spec.submission_id_column, values, fix=_missing_column_fix)
    refuse_problems(sample_form_problems(frame, spec, classes),
                    f"Sample submission {path} does not look like a submission_format: {form} file",
                    expected=FORM_TEXT.get(form, form),
                    fix="the sample decides the form: set submission_format (and the metric) in the competition "
                        "spec to what the sample holds (`make spec` infers both; docs/competition-spec.md)")
    return frame


FORM_TEXT = {"label": "one class name per row",
             "probability": "one column of numbers in 0..1: P(positive_class)",
             "probabilities": "a column of numbers in 0..1 per class, named as the classes",
             "top_k": "k space-separated class names per row, best first",
             "number": "one number per row"}


def _read_sample(path: Path, id_column: str, value_columns: Sequence[str], fix=None) -> pd.DataFrame:
    frame = _read_csv_as_text(path, id_column, value_columns[0] if value_columns else "<one column per class>")
    _require_columns(frame, str(path), id_column, *value_columns, fix=fix(frame, id_column) if fix else "")
    if frame.empty:
        raise PodiumError(f"Sample submission {path} has a header but no rows.",
                          expected="one row per test image",
                          received=f"only the header {quoted_names(frame.columns)}",
                          fix="unpack the competition files again (`make data FORCE=1`)")
    _refuse_broken_sample_ids(frame[id_column], path)
    return frame


def _missing_column_fix(frame: pd.DataFrame, id_column: str) -> str:
    """A sample with a numeric column per class, read for one label column: say which form it is."""
    others = [name for name in frame.columns if name != id_column]
    if len(others) >= 2 and not frame.empty and all(numbers_only(frame[name]) for name in others):
        return (f"the sample holds a number column per class ({quoted_names(others[:SHOWN])}): set "
                "submission_format: probabilities (and its metric) in the competition spec, or run `make spec`")
    return ""


def _read_csv_as_text(path: Path, id_column: str, label_column: str) -> pd.DataFrame:
    if not path.is_file():
        raise PodiumError(f"Sample submission {path} does not exist.",
                          expected="the competition's sample submission CSV",
                          received=f"no file at {path}",
                          fix="run `make data`, or set sample_submission in the competition spec")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise PodiumError(f"Sample submission {path} is empty.",
                          expected=f"a header '{id_column},{label_column}' and one row per test image",
                          received="an empty file",
                          fix="unpack the competition files again (`make data FORCE=1`)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise PodiumError(f"Sample submission {path} is not a readable CSV.",
                          expected="a UTF-8 CSV file", received=str(err).strip()[:200],
                          fix="unpack the competition files again (`make data FORCE=1`)") from None


def _require_columns(frame: pd.DataFrame, source: str, id_column: str, *value_columns: str, fix: str = "") -> None:
    wanted = [id_column, *value_columns]
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise PodiumError(f"Sample submission {source} has no column {quoted_names(missing)}.",
                          expected=f"columns {quoted_names(wanted)}",
                          received=f"columns {quoted_names(frame.columns)}",
                          fix=fix or "set submission_id_column / submission_label_column in the competition "
                                     "spec to the names found")


def _refuse_broken_sample_ids(ids: pd.Series, path: Path) -> None:
    blank = [row for row, value in enumerate(ids, start=1) if not value.strip()]
    if blank:
        raise PodiumError(f"Sample submission {path} has {len(blank)} empty id(s).",
                          expected="an id on every row", received=f"empty ids on row(s) {few(blank)}",
                          fix="unpack the competition files again (`make data FORCE=1`); if the file is as "
                              "published, report it on the competition forum")
    repeated = repeated_values(ids)
    if repeated:
        raise PodiumError(f"Sample submission {path} has {len(repeated)} duplicate id(s).",
                          expected="each test id exactly once",
                          received=f"duplicate ids {few_quoted(repeated)}",
                          fix="unpack the competition files again (`make data FORCE=1`); if the file is as "
                              "published, report it on the competition forum")


# -------------------------------------------------------------------------------------- validating


def submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, label_column: str,
                        classes: Sequence[str]) -> list[str]:
    """Every way `frame` differs from what the competition accepts, one sentence each; [] when valid."""
    problems = _row_problems(frame, sample, id_column, label_column)
    if _has_one(frame, label_column):
        problems += _label_problems(column_text(frame[label_column]), classes)
    return problems


def _row_problems(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, value_column: str) -> list[str]:
    """What every form checks first: the sample's columns, its row count, its ids in its order."""
    _require_columns(sample, "(in memory)", id_column, value_column)
    problems = column_problems(frame, sample)
    if len(frame) != len(sample):
        problems.append(f"{len(frame)} rows, the sample has {len(sample)}")
    if _has_one(frame, id_column):
        problems += _id_problems(column_text(frame[id_column]), list(sample[id_column]))
    return problems


def validate_submission(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, label_column: str,
                        classes: Sequence[str]) -> None:
    """Raise one PodiumError naming every problem, so a user fixes them all in one round trip."""
    _require_classes(classes)
    refuse_problems(submission_problems(frame, sample, id_column, label_column, classes),
                    "The submission does not match the sample submission",
                    expected=f"columns {quoted_names(sample.columns)}; the sample's {len(sample)} ids, each once, "
                             f"in the sample's order; every {label_column!r} one of the {len(classes)} classes",
                    fix="build it with podium.submission.validate.submission_frame(sample, labels_by_id, ...), which takes "
                        "ids and order from the sample, and map predictions to the model's class names")


def refuse_problems(problems: Sequence[str], what: str, expected: str, fix: str) -> None:
    """One PodiumError numbering every problem, so a user fixes them all in one round trip; [] passes."""
    if problems:
        numbered = "; ".join(f"({n}) {text}" for n, text in enumerate(problems, start=1))
        raise PodiumError(f"{what} ({len(problems)} problem(s)).", expected=expected, received=numbered, fix=fix)


def _has_one(frame: pd.DataFrame, column: str) -> bool:
    """A repeated column name is already a column problem; its values cannot be read as one column."""
    return list(frame.columns).count(column) == 1


def _require_classes(classes: Sequence[str]) -> None:
    if len(classes) == 0:
        raise PodiumError("No class names to check the submission's labels against.",
                          expected="the class names the model was trained on", received="an empty list",
                          fix="pass the classes from the run's config or the competition spec")


def column_problems(frame: pd.DataFrame, sample: pd.DataFrame) -> list[str]:
    found, wanted = list(frame.columns), list(sample.columns)
    if found == wanted:
        return []
    details = []
    missing = [name for name in wanted if name not in found]
    unexpected = [name for name in found if name not in wanted]
    if missing:
        details.append(f"missing {quoted_names(missing)}")
    if unexpected:
        details.append(f"unexpected {quoted_names(unexpected)}")
    if len(set(found)) < len(found):
        details.append("a column name repeats")
    if not details:
        details.append("same names in a different order")
    return [f"columns {quoted_names(found)} differ from the sample's {quoted_names(wanted)}: {', '.join(details)}"]


def _id_problems(ids: list[str], sample_ids: list[str]) -> list[str]:
    problems = []
    blank_rows = [row for row, value in enumerate(ids, start=1) if not value.strip()]
    if blank_rows:
        problems.append(f"{len(blank_rows)} empty id(s), on row(s) {few(blank_rows)}")
    repeated = repeated_values(value for value in ids if value.strip())
    if repeated:
        problems.append(f"{len(repeated)} duplicate id(s): {few_quoted(repeated)}")
    present, expected = set(ids), set(sample_ids)
    missing = [value for value in sample_ids if value not in present]
    extra = list(dict.fromkeys(value for value in ids if value not in expected and value.strip()))
    if missing:
        problems.append(f"{len(missing)} id(s) of the sample missing: {few_quoted(missing)}")
    if extra:
        problems.append(f"{len(extra)} id(s) not in the sample: {few_quoted(extra)}")
    if not problems and ids != sample_ids:
        problems.append(_order_problem(ids, sample_ids))
    return problems


def _order_problem(ids: list[str], sample_ids: list[str]) -> str:
    row = next(n for n, (got, want) in enumerate(zip(ids, sample_ids), start=1) if got != want)
    return (f"ids are in a different order than the sample's: row {row} has id {ids[row - 1]!r} "
            f"where the sample has {sample_ids[row - 1]!r}")


def _label_problems(labels: list[str], classes: Sequence[str]) -> list[str]:
    problems = []
    empty_rows = [row for row, value in enumerate(labels, start=1) if not value.strip()]
    if empty_rows:
        problems.append(f"{len(empty_rows)} empty/NaN label(s), on row(s) {few(empty_rows)}")
    allowed = set(classes)
    unknown = Counter(value for value in labels if value.strip() and value not in allowed)
    if unknown:
        named = [f"{value!r} ({count} row{'s' if count > 1 else ''}{did_you_mean(value, classes)})"
                 for value, count in unknown.most_common(SHOWN)]
        more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        problems.append(f"{len(unknown)} label(s) not among the classes: {', '.join(named)}{more}")
    return problems


# ------------------------------------------------------------------------------------------ forms


def number_problems(values: Sequence[Any], column: str, low: float | None = None,
                    high: float | None = None, integers: bool = False) -> list[str]:
    """What keeps a column from being numbers a metric can read: empty cells, text, NaN/infinite values,
    values outside [low, high] (either bound None: open) and, with `integers`, values that are not whole
    numbers (QWK's grades). One sentence per kind of problem; [] when fine."""
    texts = [as_text(value).strip() for value in values]
    numbers = parse_numbers(texts)
    problems = []
    empty = [row for row, text in enumerate(texts, start=1) if not text]
    if empty:
        problems.append(f"column {column!r}: {len(empty)} empty value(s), on row(s) {few(empty)}")
    text_rows = [row for row, (text, number) in enumerate(zip(texts, numbers), start=1)
                 if text and number is None]
    if text_rows:
        problems.append(f"column {column!r}: {len(text_rows)} value(s) that are not numbers, e.g. "
                        f"{few_quoted([texts[row - 1] for row in text_rows])}")
    parsed = [(row, number) for row, number in enumerate(numbers, start=1) if number is not None]
    odd = [row for row, number in parsed if not np.isfinite(number)]
    if odd:
        problems.append(f"column {column!r}: {len(odd)} NaN or infinite value(s), on row(s) {few(odd)}")
    outside = [(row, number) for row, number in parsed if np.isfinite(number) and
               ((low is not None and number < low) or (high is not None and number > high))]
    if outside:
        bounds = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        problems.append(f"column {column!r}: {len(outside)} value(s) outside {bounds}, e.g. "
                        f"{few([f'{number:g} (row {row})' for row, number in outside])}")
    fractional = [(row, number) for row, number in parsed if np.isfinite(number) and number != round(number)]
    if integers and fractional:
        problems.append(f"column {column!r}: {len(fractional)} value(s) that are not integer grades, e.g. "
                        f"{few([f'{number:g} (row {row})' for row, number in fractional])}")
    return problems


def number_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, column: str,
                               integers: bool = False) -> list[str]:
    """Every way a `number` submission (regression; integer grades for QWK) differs from what the competition
    accepts: the sample's columns, ids and order, then a finite number in every row of `column`; [] when valid."""
    problems = _row_problems(frame, sample, id_column, column)
    if _has_one(frame, column):
        problems += number_problems(frame[column].tolist(), column, integers=integers)
    return problems


def validate_number_submission(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, column: str,
                               integers: bool = False) -> None:
    """Raise one PodiumError naming every problem of a `number` submission."""
    refuse_problems(number_submission_problems(frame, sample, id_column, column, integers),
                    "The submission does not match the sample submission (submission_format: number)",
                    expected=f"columns {quoted_names(sample.columns)}; the sample's {len(sample)} ids, each once, "
                             f"in the sample's order; every {column!r} a finite number"
                             + (", an integer grade" if integers else ""),
                    fix="build it with podium.submission.validate.submission_frame(sample, values_by_id, ...), "
                        "which takes ids and order from the sample")


def class_submission_problems(frame: pd.DataFrame, sample: pd.DataFrame, spec,
                              classes: Sequence[str]) -> list[str]:
    """Every way a one-label-per-image submission differs from what the competition accepts, in the spec's
    submission_format: the sample's columns, ids and order, then the form's values; [] when valid."""
    form = spec.resolved_submission_format
    id_column, label_column = spec.submission_id_column, spec.submission_label_column
    if form == "label":
        return submission_problems(frame, sample, id_column, label_column, classes)
    if form not in CLASS_FORMS:
        raise PodiumError(f"A one-label-per-image model cannot write a submission of form {form!r}.",
                          expected=f"submission_format: {' | '.join(CLASS_FORMS)}", received=form,
                          fix="set submission_format to what the sample holds (`make spec` infers it)")
    problems = column_problems(frame, sample)
    if len(frame) != len(sample):
        problems.append(f"{len(frame)} rows, the sample has {len(sample)}")
    if _has_one(frame, id_column):
        problems += _id_problems(column_text(frame[id_column]), list(sample[id_column]))
    if form == "probability" and _has_one(frame, label_column):
        problems += number_problems(frame[label_column].tolist(), label_column, 0.0, 1.0)
    elif form == "probabilities":
        columns = [name for name in sample.columns if name != id_column]
        problems += class_column_problems(columns, classes)
        present = [name for name in columns if _has_one(frame, name)]
        for name in present:
            problems += number_problems(frame[name].tolist(), name, 0.0, 1.0)
        if not problems and spec.resolved_metric.name in ROW_SUM_METRICS:
            problems += _row_sum_problems(frame[present], spec.resolved_metric.label)
    elif form == "top_k" and _has_one(frame, label_column):
        problems += ranking_problems(column_text(frame[label_column]), classes, spec.resolved_top_k)
    return problems


def _row_sum_problems(columns: pd.DataFrame, metric: str) -> list[str]:
    sums = columns.astype(float).sum(axis=1).to_numpy()
    off = [(row, total) for row, total in enumerate(sums, start=1) if abs(total - 1.0) > ROW_SUM_TOLERANCE]
    if not off:
        return []
    return [f"{len(off)} row(s) whose probabilities do not sum to 1 ({metric} reads each row as a distribution), "
            f"e.g. {few([f'row {row}: {total:.4g}' for row, total in off])}"]


def ranking_problems(cells: Sequence[str], classes: Sequence[str], k: int) -> list[str]:
    """Each cell: exactly k space-separated, distinct, known class names."""
    allowed, problems = set(classes), []
    wrong_count = [row for row, cell in enumerate(cells, start=1) if len(cell.split()) != k]
    if wrong_count:
        problems.append(f"{len(wrong_count)} row(s) without exactly {k} space-separated labels, e.g. row(s) "
                        f"{few(wrong_count)}")
    repeated = [row for row, cell in enumerate(cells, start=1) if len(set(cell.split())) != len(cell.split())]
    if repeated:
        problems.append(f"{len(repeated)} row(s) naming a label twice, e.g. row(s) {few(repeated)}")
    unknown = Counter(name for cell in cells for name in cell.split() if name not in allowed)
    if unknown:
        named = [f"{name!r}{did_you_mean(name, classes)}" for name, _ in unknown.most_common(SHOWN)]
        problems.append(f"{len(unknown)} label(s) not among the classes: {', '.join(named)}")
    return problems


def validate_class_submission(frame: pd.DataFrame, sample: pd.DataFrame, spec, classes: Sequence[str]) -> None:
    """Raise one PodiumError naming every problem of a submission in the spec's submission_format."""
    _require_classes(classes)
    form = spec.resolved_submission_format
    refuse_problems(class_submission_problems(frame, sample, spec, classes),
                    f"The submission does not match the sample submission (submission_format: {form})",
                    expected=f"columns {quoted_names(sample.columns)}; the sample's {len(sample)} ids, each once, "
                             f"in the sample's order; {FORM_TEXT.get(form, form)}",
                    fix="build it with podium.submission.validate.class_form_frame(sample, ids, probabilities, "
                        "classes, spec), which takes ids, order and columns from the sample")


def class_form_frame(sample: pd.DataFrame, ids: Sequence[Any], probs: np.ndarray, classes: Sequence[str],
                     spec) -> pd.DataFrame:
    """The submission in the spec's submission_format from one softmax row per id, in the sample's order:
    label (the most probable class), probability (P(positive_class)), probabilities (a column per class, as
    the sample names and orders them, each row divided by its sum) or top_k (k class names, best first).
    Numbers are written with 8 significant digits."""
    form, classes = spec.resolved_submission_format, [str(name) for name in classes]
    id_column, label_column = spec.submission_id_column, spec.submission_label_column
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(ids), len(classes)):
        raise PodiumError("Class probabilities do not match the ids and classes.",
                          expected=f"shape ({len(ids)}, {len(classes)}): a row per id, a column per class",
                          received=f"shape {probs.shape}", fix="pass the model's softmax outputs for these ids")
    if form == "label":
        values: list[str] = list(np.asarray(classes)[probs.argmax(axis=1)])
    elif form == "probability":
        values = [_number(p) for p in probs[:, positive_index(spec.positive_class, classes)]]
    elif form == "top_k":
        names = np.asarray(classes)
        values = [" ".join(names[row]) for row in top_k_indices(probs, spec.resolved_top_k)]
    elif form == "probabilities":
        return probability_columns(sample, ids, probs, classes, id_column)
    else:
        class_submission_problems(sample.head(0), sample, spec, classes)  # raises: not a class form
        values = []
    return submission_frame(sample, dict(zip((as_text(i) for i in ids), values)), id_column, label_column)


def probability_columns(sample: pd.DataFrame, ids: Sequence[Any], probs: np.ndarray, classes: Sequence[str],
                        id_column: str, normalise: bool = True) -> pd.DataFrame:
    """A column per class as the sample names and orders them, a row per sample id in its order; with
    `normalise` each row is divided by its sum (softmax rows; multi-label's sigmoids are written as they are)."""
    classes = [str(name) for name in classes]
    columns = [name for name in sample.columns if name != id_column]
    problems = class_column_problems(columns, classes)
    if problems:
        raise PodiumError("The sample's columns are not the model's classes.",
                          expected=f"a column per class, named as the classes: {', '.join(classes)}",
                          received="; ".join(problems),
                          fix="give the spec the classes as the sample names them (classes: [...]), or check "
                              "that the run was trained on this competition")
    position = {as_text(value): row for row, value in enumerate(ids)}
    sample_ids = list(sample[id_column])
    missing = [value for value in sample_ids if value not in position]
    if missing:
        raise PodiumError(f"No prediction for {len(missing)} of the sample's {len(sample_ids)} ids.",
                          expected="a prediction for every id in the sample submission",
                          received=f"missing ids {few_quoted(missing)}",
                          fix="predict every test image, and spell ids as the sample does (file name or stem)")
    rows = np.asarray(probs, dtype=np.float64)[[position[value] for value in sample_ids]]
    if normalise:
        rows = rows / np.where(rows.sum(axis=1, keepdims=True) > 0, rows.sum(axis=1, keepdims=True), 1.0)
    out = {id_column: pd.Series(sample_ids, dtype="str")}
    for name in columns:
        out[name] = pd.Series([_number(p) for p in rows[:, classes.index(name)]], dtype="str")
    return pd.DataFrame(out)[list(sample.columns)]


def write_class_submission(path: str | os.PathLike, sample: pd.DataFrame, ids: Sequence[Any], probs: np.ndarray,
                           classes: Sequence[str], spec) -> pd.DataFrame:
    """Build the spec's form from softmax rows, validate it, then write atomically (never an invalid file)."""
    frame = class_form_frame(sample, ids, probs, classes, spec)
    validate_class_submission(frame, sample, spec, classes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def _number(value: float) -> str:
    return f"{float(value):.8g}"


# ---------------------------------------------------------------------------------------- building


def submission_frame(sample: pd.DataFrame, id_to_label: Mapping[Any, Any], id_column: str,
                     label_column: str) -> pd.DataFrame:
    """The submission in the sample's order, whatever order the predictions were made in.

    Ids in the mapping but not in the sample are ignored: the sample defines what is scored.
    """
    _require_columns(sample, "(in memory)", id_column, label_column)
    labels_by_id = {as_text(key): value for key, value in id_to_label.items()}
    sample_ids = list(sample[id_column])
    missing = [value for value in sample_ids if value not in labels_by_id]
    if missing:
        expected = set(sample_ids)
        unmatched = [key for key in labels_by_id if key not in expected]
        seen = f"; the predictions have ids such as {few_quoted(unmatched)}" if unmatched else ""
        raise PodiumError(f"No prediction for {len(missing)} of the sample's {len(sample_ids)} ids.",
                          expected="a label for every id in the sample submission",
                          received=f"missing ids {few_quoted(missing)}{seen}",
                          fix="predict every test image, and spell ids as the sample does (file name "
                              "or stem, leading zeros)")
    labels = [text_or_none(labels_by_id[value]) for value in sample_ids]
    return _frame_in_sample_order(sample, id_column, sample_ids, label_column, labels)


def write_submission(path: str | os.PathLike, ids: Sequence[Any], labels: Sequence[Any],
                     sample: pd.DataFrame, id_column: str, label_column: str,
                     classes: Sequence[str]) -> Path:
    """Validate, then write atomically: an invalid submission is never written, an old file survives."""
    if len(ids) != len(labels):
        raise PodiumError("Ids and labels differ in length, so rows cannot be paired.",
                          expected="one label per id", received=f"{len(ids)} ids, {len(labels)} labels",
                          fix="pass ids and labels from the same prediction run")
    frame = _frame_in_sample_order(sample, id_column, [text_or_none(v) for v in ids],
                                   label_column, [text_or_none(v) for v in labels])
    validate_submission(frame, sample, id_column, label_column, classes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def _frame_in_sample_order(sample: pd.DataFrame, id_column: str, ids: list, label_column: str,
                           labels: list) -> pd.DataFrame:
    values = {id_column: ids, label_column: labels}
    ordered = [name for name in sample.columns if name in values]
    return pd.DataFrame({name: pd.Series(values[name], dtype="str") for name in ordered})
