"""Submissions against the real embedded demo sample: valid ones round-trip, invalid ones are never written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import podium
from podium.errors import PodiumError
from podium.submission.validate import (read_sample_submission, submission_frame, submission_problems,
                               validate_submission, write_submission)

DEMO_SAMPLE = Path(podium.__file__).parent / "demo" / "sample_submission.csv"
DEMO_TEST_LABELS = Path(__file__).parent / "data" / "demo_test_labels.csv"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ID, LABEL = "id", "label"


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return read_sample_submission(DEMO_SAMPLE, ID, LABEL)


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    """The demo test set's true labels stand in for a model's predictions: real ids, real classes."""
    return pd.read_csv(DEMO_TEST_LABELS, dtype=str, keep_default_na=False)


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ read_sample_submission


def test_demo_sample_is_read_as_text_in_file_order(sample):
    assert list(sample.columns) == [ID, LABEL]
    assert len(sample) == 500
    assert list(sample[ID]) == [str(n) for n in range(1, 501)]
    assert all(isinstance(value, str) for value in sample[ID])


def test_leading_zero_ids_and_na_like_labels_are_kept_as_written(tmp_path):
    path = _write_csv(tmp_path / "sample.csv", "id,label\n001,NA\n002,\n010,null\n")
    frame = read_sample_submission(path, ID, LABEL)
    assert list(frame[ID]) == ["001", "002", "010"]
    assert list(frame[LABEL]) == ["NA", "", "null"]


def test_missing_sample_file_is_refused(tmp_path):
    with pytest.raises(PodiumError, match="does not exist") as info:
        read_sample_submission(tmp_path / "nope.csv", ID, LABEL)
    assert info.value.fix and "nope.csv" in info.value.received


def test_sample_without_required_column_lists_the_columns_found(tmp_path):
    path = _write_csv(tmp_path / "sample.csv", "Id,Expected\nimg0.jpg,x\n")
    with pytest.raises(PodiumError, match="has no column") as info:
        read_sample_submission(path, ID, LABEL)
    assert "'Id'" in info.value.received and "'Expected'" in info.value.received
    assert info.value.expected and info.value.fix


def test_sample_with_duplicate_ids_is_refused_naming_them(tmp_path):
    path = _write_csv(tmp_path / "sample.csv", "id,label\n1,a\n2,a\n2,a\n3,a\n3,a\n4,a\n")
    with pytest.raises(PodiumError, match="has 2 duplicate id") as info:
        read_sample_submission(path, ID, LABEL)
    assert "'2'" in info.value.received and "'3'" in info.value.received


def test_sample_with_an_empty_id_is_refused(tmp_path):
    path = _write_csv(tmp_path / "sample.csv", "id,label\n1,a\n,a\n")
    with pytest.raises(PodiumError, match="empty id"):
        read_sample_submission(path, ID, LABEL)


@pytest.mark.parametrize("text, message", [("", "is empty"), ("id,label\n", "no rows")])
def test_empty_sample_is_refused(tmp_path, text, message):
    path = _write_csv(tmp_path / "sample.csv", text)
    with pytest.raises(PodiumError, match=message) as info:
        read_sample_submission(path, ID, LABEL)
    assert info.value.expected and info.value.fix


# ------------------------------------------------------------------------------------ write, valid


def test_valid_submission_is_written_and_reads_back_as_intended(tmp_path, sample, predictions):
    out = tmp_path / "submissions" / "demo" / "run.csv"
    written = write_submission(out, list(predictions[ID]), list(predictions[LABEL]), sample, ID, LABEL,
                               CLASSES)
    assert written == out
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, predictions[[ID, LABEL]], check_dtype=False)
    assert _files(out.parent) == ["run.csv"]  # no temp file left beside it
    assert out.read_text(encoding="utf-8").splitlines()[:2] == ["id,label", "1,truck"]


def test_valid_submission_replaces_an_existing_file(tmp_path, sample, predictions):
    out = _write_csv(tmp_path / "run.csv", "old\n")
    write_submission(out, predictions[ID], predictions[LABEL], sample, ID, LABEL, CLASSES)
    assert pd.read_csv(out, dtype=str)[LABEL].tolist() == predictions[LABEL].tolist()


def test_leading_zero_ids_survive_the_whole_path(tmp_path):
    sample = read_sample_submission(_write_csv(tmp_path / "s.csv", "id,label\n001,cat\n002,cat\n"), ID, LABEL)
    out = write_submission(tmp_path / "sub.csv", ["001", "002"], ["dog", "cat"], sample, ID, LABEL, CLASSES)
    assert out.read_text(encoding="utf-8") == "id,label\n001,dog\n002,cat\n"


def test_integer_ids_do_not_match_zero_padded_sample_ids(tmp_path):
    sample = read_sample_submission(_write_csv(tmp_path / "s.csv", "id,label\n001,cat\n002,cat\n"), ID, LABEL)
    with pytest.raises(PodiumError, match="missing: '001', '002'"):
        write_submission(tmp_path / "sub.csv", [1, 2], ["dog", "cat"], sample, ID, LABEL, CLASSES)
    assert not (tmp_path / "sub.csv").exists()


def test_frame_follows_the_sample_column_order(tmp_path):
    sample = read_sample_submission(_write_csv(tmp_path / "s.csv", "label,id\ncat,a\ncat,b\n"), ID, LABEL)
    out = write_submission(tmp_path / "sub.csv", ["a", "b"], ["dog", "cat"], sample, ID, LABEL, CLASSES)
    assert out.read_text(encoding="utf-8") == "label,id\ndog,a\ncat,b\n"


# ---------------------------------------------------------------------------------- write, invalid


def _break(ids: list, labels: list, case: str) -> tuple[list, list]:
    ids, labels = list(ids), list(labels)
    if case == "missing id":
        del ids[41], labels[41]  # id "42"
    elif case == "extra id":
        ids.append("501"), labels.append("cat")
    elif case == "shuffled order":
        order = np.random.default_rng(0).permutation(len(ids))
        ids, labels = [ids[i] for i in order], [labels[i] for i in order]
    elif case == "NaN label":
        labels[6] = float("nan")
    elif case == "empty label":
        labels[6] = ""
    elif case == "unknown label":
        labels[9] = "dragon"
    elif case == "duplicate id":
        ids[1] = "1"  # id 2 replaced by a second 1
    return ids, labels


INVALID = {
    "missing id": ["499 rows, the sample has 500", "1 id(s) of the sample missing: '42'"],
    "extra id": ["501 rows, the sample has 500", "1 id(s) not in the sample: '501'"],
    "shuffled order": ["different order", "row 1 has id"],
    "NaN label": ["1 empty/NaN label(s), on row(s) 7"],
    "empty label": ["1 empty/NaN label(s), on row(s) 7"],
    "unknown label": ["label(s) not among the classes: 'dragon' (1 row)"],
    "duplicate id": ["1 duplicate id(s): '1'", "missing: '2'"],
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_submission_names_the_problem_and_writes_nothing(tmp_path, sample, predictions, case):
    ids, labels = _break(predictions[ID].tolist(), predictions[LABEL].tolist(), case)
    out = tmp_path / "run.csv"
    with pytest.raises(PodiumError) as info:
        write_submission(out, ids, labels, sample, ID, LABEL, CLASSES)
    for phrase in INVALID[case]:
        assert phrase in str(info.value)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_submission_leaves_an_existing_file_untouched(tmp_path, sample, predictions, case):
    out = tmp_path / "run.csv"
    write_submission(out, predictions[ID], predictions[LABEL], sample, ID, LABEL, CLASSES)
    before = out.read_bytes()
    ids, labels = _break(predictions[ID].tolist(), ["cat"] * len(predictions), case)
    with pytest.raises(PodiumError):
        write_submission(out, ids, labels, sample, ID, LABEL, CLASSES)
    assert out.read_bytes() == before
    assert _files(tmp_path) == ["run.csv"]


def test_shuffled_order_error_shows_the_first_differing_row(sample, predictions):
    frame = predictions[[ID, LABEL]].copy()
    frame.iloc[[2, 3]] = frame.iloc[[3, 2]].to_numpy()  # swap rows 3 and 4
    problems = submission_problems(frame, sample, ID, LABEL, CLASSES)
    assert problems == ["ids are in a different order than the sample's: row 3 has id '4' where the "
                        "sample has '3'"]


def test_unknown_label_suggests_the_close_class(sample, predictions):
    frame = predictions[[ID, LABEL]].copy()
    frame.loc[0, LABEL] = "Cat"
    with pytest.raises(PodiumError, match="did you mean 'cat'"):
        validate_submission(frame, sample, ID, LABEL, CLASSES)


@pytest.mark.parametrize("make_frame, phrase", [
    (lambda f: f.rename(columns={LABEL: "Label"}), "missing ['label'], unexpected ['Label']"),
    (lambda f: f[[LABEL, ID]], "same names in a different order"),
], ids=["renamed", "swapped"])
def test_wrong_columns_are_named(sample, predictions, make_frame, phrase):
    frame = make_frame(predictions[[ID, LABEL]])
    with pytest.raises(PodiumError) as info:
        validate_submission(frame, sample, ID, LABEL, CLASSES)
    assert phrase in str(info.value)
    assert "columns [" in info.value.received


def test_extra_column_is_named(sample, predictions):
    frame = predictions[[ID, LABEL]].assign(prob=0.5)
    problems = submission_problems(frame, sample, ID, LABEL, CLASSES)
    assert problems == ["columns ['id', 'label', 'prob'] differ from the sample's ['id', 'label']: "
                        "unexpected ['prob']"]


def test_repeated_column_is_named_without_crashing(sample, predictions):
    frame = pd.concat([predictions[[ID, LABEL]], predictions[[ID]]], axis=1)
    problems = submission_problems(frame, sample, ID, LABEL, CLASSES)
    assert problems == ["columns ['id', 'label', 'id'] differ from the sample's ['id', 'label']: "
                        "a column name repeats"]


def test_all_problems_are_reported_in_one_error(sample, predictions):
    frame = predictions[[ID, LABEL]].iloc[:-1].copy()  # drops id 500
    frame.loc[0, LABEL] = "dragon"
    frame.loc[1, LABEL] = None
    frame.loc[2, ID] = "1"
    with pytest.raises(PodiumError) as info:
        validate_submission(frame, sample, ID, LABEL, CLASSES)
    message = str(info.value)
    assert "(5 problem(s))" in message
    for phrase in ["499 rows", "duplicate id(s): '1'", "missing: '3', '500'", "empty/NaN label(s), on row(s) 2",
                   "'dragon'"]:
        assert phrase in message


def test_valid_frame_has_no_problems(sample, predictions):
    assert submission_problems(predictions[[ID, LABEL]], sample, ID, LABEL, CLASSES) == []
    validate_submission(predictions[[ID, LABEL]], sample, ID, LABEL, CLASSES)


def test_empty_class_list_is_refused(sample, predictions):
    with pytest.raises(PodiumError, match="No class names"):
        validate_submission(predictions[[ID, LABEL]], sample, ID, LABEL, ())


def test_ids_and_labels_of_different_length_are_refused(tmp_path, sample):
    with pytest.raises(PodiumError, match="differ in length"):
        write_submission(tmp_path / "x.csv", ["1", "2"], ["cat"], sample, ID, LABEL, CLASSES)
    assert _files(tmp_path) == []


# -------------------------------------------------------------------------------- submission_frame


def test_submission_frame_takes_the_order_from_the_sample(sample, predictions):
    pairs = list(zip(predictions[ID], predictions[LABEL]))
    shuffled = [pairs[i] for i in np.random.default_rng(1).permutation(len(pairs))]
    frame = submission_frame(sample, dict(shuffled), ID, LABEL)
    assert list(frame[ID]) == list(sample[ID])
    assert list(frame[LABEL]) == list(predictions[LABEL])
    validate_submission(frame, sample, ID, LABEL, CLASSES)


def test_submission_frame_refuses_missing_ids_and_shows_how_the_predictions_spell_them(sample, predictions):
    by_file_name = {f"{i}.jpg": label for i, label in zip(predictions[ID], predictions[LABEL])}
    with pytest.raises(PodiumError, match="No prediction for 500 of the sample's 500 ids") as info:
        submission_frame(sample, by_file_name, ID, LABEL)
    assert "'1.jpg'" in info.value.received and "'1'" in info.value.received


def test_submission_frame_ignores_predictions_outside_the_sample(sample, predictions):
    labels = dict(zip(predictions[ID], predictions[LABEL])) | {"9999": "cat"}
    frame = submission_frame(sample, labels, ID, LABEL)
    assert len(frame) == 500 and "9999" not in set(frame[ID])
