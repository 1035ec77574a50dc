"""Submissions that are right the first time: every problem is found before a byte is written.

The sample submission is the contract. Ids, their spelling ("001" is not "1") and their order come from
it, never from the file system: a test set read in directory order once turned 0.97 into 0.56. An invalid
submission is never written, and a previous file at the same path survives a failed attempt.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from podium.errors import PodiumError
from podium.io import atomic_path

SHOWN = 5  # how many example ids/labels a message names before saying "and N more"


# ----------------------------------------------------------------------------------------- reading


def read_sample_submission(path: str | os.PathLike, id_column: str, label_column: str) -> pd.DataFrame:
    """The competition's sample submission, ids kept exactly as written (all text, nothing parsed as NaN).

    A sample without the expected columns, with no rows or with repeated ids is a broken competition file;
    building a submission on it would only move the failure to the leaderboard, so it is refused here.
    """
    path = Path(path)
    frame = _read_csv_as_text(path, id_column, label_column)
    _require_columns(frame, str(path), id_column, label_column)
    if frame.empty:
        raise PodiumError(f"Sample submission {path} has a header but no rows.",
                          expected="one row per test image",
                          received=f"only the header {_names(frame.columns)}",
                          fix="unpack the competition files again (`make data FORCE=1`)")
    _refuse_broken_sample_ids(frame[id_column], path)
    return frame


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


def _require_columns(frame: pd.DataFrame, source: str, id_column: str, label_column: str) -> None:
    missing = [name for name in (id_column, label_column) if name not in frame.columns]
    if missing:
        raise PodiumError(f"Sample submission {source} has no column {_names(missing)}.",
                          expected=f"columns {_names([id_column, label_column])}",
                          received=f"columns {_names(frame.columns)}",
                          fix="set submission_id_column / submission_label_column in the competition "
                              "spec to the names found")


def _refuse_broken_sample_ids(ids: pd.Series, path: Path) -> None:
    blank = [row for row, value in enumerate(ids, start=1) if not value.strip()]
    if blank:
        raise PodiumError(f"Sample submission {path} has {len(blank)} empty id(s).",
                          expected="an id on every row", received=f"empty ids on row(s) {_few(blank)}",
                          fix="unpack the competition files again (`make data FORCE=1`); if the file is as "
                              "published, report it on the competition forum")
    repeated = _repeated(ids)
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
    _require_columns(sample, "(in memory)", id_column, label_column)
    problems = column_problems(frame, sample)
    if len(frame) != len(sample):
        problems.append(f"{len(frame)} rows, the sample has {len(sample)}")
    if _has_one(frame, id_column):
        problems += _id_problems(_as_text(frame[id_column]), list(sample[id_column]))
    if _has_one(frame, label_column):
        problems += _label_problems(_as_text(frame[label_column]), classes)
    return problems


def validate_submission(frame: pd.DataFrame, sample: pd.DataFrame, id_column: str, label_column: str,
                        classes: Sequence[str]) -> None:
    """Raise one PodiumError naming every problem, so a user fixes them all in one round trip."""
    _require_classes(classes)
    refuse_problems(submission_problems(frame, sample, id_column, label_column, classes),
                    "The submission does not match the sample submission",
                    expected=f"columns {_names(sample.columns)}; the sample's {len(sample)} ids, each once, in the "
                             f"sample's order; every {label_column!r} one of the {len(classes)} classes",
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
        details.append(f"missing {_names(missing)}")
    if unexpected:
        details.append(f"unexpected {_names(unexpected)}")
    if len(set(found)) < len(found):
        details.append("a column name repeats")
    if not details:
        details.append("same names in a different order")
    return [f"columns {_names(found)} differ from the sample's {_names(wanted)}: {', '.join(details)}"]


def _id_problems(ids: list[str], sample_ids: list[str]) -> list[str]:
    problems = []
    blank_rows = [row for row, value in enumerate(ids, start=1) if not value.strip()]
    if blank_rows:
        problems.append(f"{len(blank_rows)} empty id(s), on row(s) {_few(blank_rows)}")
    repeated = _repeated(value for value in ids if value.strip())
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
        problems.append(f"{len(empty_rows)} empty/NaN label(s), on row(s) {_few(empty_rows)}")
    allowed = set(classes)
    unknown = Counter(value for value in labels if value.strip() and value not in allowed)
    if unknown:
        named = [f"{value!r} ({count} row{'s' if count > 1 else ''}{_did_you_mean(value, classes)})"
                 for value, count in unknown.most_common(SHOWN)]
        more = f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else ""
        problems.append(f"{len(unknown)} label(s) not among the classes: {', '.join(named)}{more}")
    return problems


def _did_you_mean(value: str, classes: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(classes), n=1, cutoff=0.6)
    if not close:
        lowered = [name for name in classes if name.lower() == value.lower()]
        close = lowered[:1]
    return f"; did you mean {close[0]!r}?" if close else ""


# ---------------------------------------------------------------------------------------- building


def submission_frame(sample: pd.DataFrame, id_to_label: Mapping[Any, Any], id_column: str,
                     label_column: str) -> pd.DataFrame:
    """The submission in the sample's order, whatever order the predictions were made in.

    Ids in the mapping but not in the sample are ignored: the sample defines what is scored.
    """
    _require_columns(sample, "(in memory)", id_column, label_column)
    labels_by_id = {_text(key): value for key, value in id_to_label.items()}
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
    labels = [_text_or_none(labels_by_id[value]) for value in sample_ids]
    return _frame_in_sample_order(sample, id_column, sample_ids, label_column, labels)


def write_submission(path: str | os.PathLike, ids: Sequence[Any], labels: Sequence[Any],
                     sample: pd.DataFrame, id_column: str, label_column: str,
                     classes: Sequence[str]) -> Path:
    """Validate, then write atomically: an invalid submission is never written, an old file survives."""
    if len(ids) != len(labels):
        raise PodiumError("Ids and labels differ in length, so rows cannot be paired.",
                          expected="one label per id", received=f"{len(ids)} ids, {len(labels)} labels",
                          fix="pass ids and labels from the same prediction run")
    frame = _frame_in_sample_order(sample, id_column, [_text_or_none(v) for v in ids],
                                   label_column, [_text_or_none(v) for v in labels])
    validate_submission(frame, sample, id_column, label_column, classes)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def _frame_in_sample_order(sample: pd.DataFrame, id_column: str, ids: list, label_column: str,
                           labels: list) -> pd.DataFrame:
    values = {id_column: ids, label_column: labels}
    ordered = [name for name in sample.columns if name in values]
    return pd.DataFrame({name: pd.Series(values[name], dtype="str") for name in ordered})


# ----------------------------------------------------------------------------------------- helpers


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _text_or_none(value: Any) -> str | None:
    return None if _is_missing(value) else str(value)


def _text(value: Any) -> str:
    """Ids and labels compared as written text; a missing value becomes "" so it reads as empty."""
    return "" if _is_missing(value) else str(value)


def _as_text(column: pd.Series) -> list[str]:
    return [_text(value) for value in column.tolist()]


def _repeated(values: Iterable[str]) -> list[str]:
    counts = Counter(values)
    return [value for value, count in counts.items() if count > 1]


def _few(values: Sequence[Any]) -> str:
    shown = ", ".join(str(value) for value in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


def few_quoted(values: Sequence[str]) -> str:
    return _few([repr(value) for value in values])


def _names(columns: Iterable[Any]) -> str:
    return "[" + ", ".join(repr(str(name)) for name in columns) + "]"
