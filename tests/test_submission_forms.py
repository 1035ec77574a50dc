"""The submission's form comes from the sample (issue 20, section 3): one class, P(positive class), a
probability per class named as the sample names them, or k ranked classes. Each is built from softmax rows,
checked before a byte is written (finite numbers in 0..1, every class column, k distinct known labels), and
a sample whose shape says another form than the spec's is refused when it is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.scoring.registry import resolve_metric
from podium.submission.form_checks import sample_form_problems
from podium.submission.validate import (class_form_frame, class_submission_problems, number_problems,
                                        read_competition_sample, validate_class_submission, write_class_submission)
from podium.tasks import get_task
from podium.tasks import base

PETS = ["cat", "dog"]
LEAVES = ["healthy", "multiple_diseases", "rust", "scab"]
IDS = ["001", "002", "010", "7"]
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
LEAF_PROBS = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]])


def _spec(**fields) -> CompetitionSpec:
    return CompetitionSpec(slug="forms", **fields)


def _sample(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({"id": IDS, **columns}, dtype=str)


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


REDUX = _spec(metric="log_loss", submission_format="probability")
PLANT = _spec(metric="mean_columnwise_auc", submission_format="probabilities")
LEAF = _spec(metric="log_loss", submission_format="probabilities")
TOP2 = _spec(metric={"name": "map_at_k", "k": 2}, submission_format="top_k")


# ---- building each form --------------------------------------------------------------------------
def test_probability_writes_p_of_the_last_class_in_the_sample_order(tmp_path):
    sample = _sample({"label": ["0.5"] * 4}).iloc[::-1].reset_index(drop=True)  # the sample's own order
    path = tmp_path / "sub.csv"
    frame = write_class_submission(path, sample, IDS, PROBS, PETS, REDUX)
    written = pd.read_csv(path, dtype=str)
    assert written["id"].tolist() == ["7", "010", "002", "001"]  # ids as the sample spells and orders them
    assert written["label"].astype(float).tolist() == [1.0, 0.5, 0.8, 0.1]  # P(dog)
    assert frame.equals(written)


def test_probability_of_a_named_positive_class():
    spec = _spec(metric="roc_auc", submission_format="probability", positive_class="cat")
    frame = class_form_frame(_sample({"label": ["0"] * 4}), IDS, PROBS, PETS, spec)
    assert frame["label"].astype(float).tolist() == [0.9, 0.2, 0.5, 0.0]


def test_probabilities_follow_the_sample_columns_not_the_model_order(tmp_path):
    sample = _sample({"scab": ["0.25"] * 4, "rust": ["0.25"] * 4, "healthy": ["0.25"] * 4,
                      "multiple_diseases": ["0.25"] * 4})
    frame = write_class_submission(tmp_path / "sub.csv", sample, IDS, LEAF_PROBS, LEAVES, PLANT)
    assert list(frame.columns) == ["id", "scab", "rust", "healthy", "multiple_diseases"]
    values = frame[["healthy", "multiple_diseases", "rust", "scab"]].astype(float).to_numpy()
    np.testing.assert_allclose(values, LEAF_PROBS, atol=1e-8)
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-7)


def test_probabilities_rows_are_divided_by_their_sum():
    sample = _sample({name: ["0"] * 4 for name in LEAVES})
    frame = class_form_frame(sample, IDS, LEAF_PROBS * 3, LEAVES, LEAF)
    np.testing.assert_allclose(frame[LEAVES].astype(float).to_numpy(), LEAF_PROBS, atol=1e-8)


def test_top_k_writes_k_class_names_best_first():
    sample = _sample({"label": ["healthy rust"] * 4})
    frame = class_form_frame(sample, IDS, LEAF_PROBS, LEAVES, TOP2)
    # ties keep the class order (a stable sort): row 3 is all 0.25
    assert frame["label"].tolist() == ["healthy multiple_diseases", "scab rust", "healthy multiple_diseases",
                                       "rust healthy"]
    assert class_submission_problems(frame, sample, TOP2, LEAVES) == []


def test_label_form_is_the_most_probable_class():
    frame = class_form_frame(_sample({"label": ["cat"] * 4}), IDS, PROBS, PETS, _spec())
    assert frame["label"].tolist() == ["cat", "dog", "cat", "dog"]  # a 0.5 tie: the first class


def test_a_sample_column_that_names_no_class_is_refused_before_writing(tmp_path):
    sample = _sample({"healthy": ["0"] * 4, "multiple_diseases": ["0"] * 4, "rust": ["0"] * 4, "scabies": ["0"] * 4})
    with pytest.raises(PodiumError, match="name no class") as err:
        write_class_submission(tmp_path / "sub.csv", sample, IDS, LEAF_PROBS, LEAVES, PLANT)
    assert "'scabies'; did you mean 'scab'?" in str(err.value) and "'scab'" in err.value.received
    assert not (tmp_path / "sub.csv").exists()


def test_probability_with_more_than_two_classes_needs_positive_class():
    with pytest.raises(PodiumError, match="needs positive_class"):
        class_form_frame(_sample({"label": ["0"] * 4}), IDS, LEAF_PROBS, LEAVES, _spec(
            metric="roc_auc", submission_format="probability"))


# ---- the validator ---------------------------------------------------------------------------------
def test_probability_values_must_be_finite_numbers_in_0_1():
    sample = _sample({"label": ["0.5"] * 4})
    frame = _sample({"label": ["0.2", "nan", "1.2", "dog"]})
    problems = class_submission_problems(frame, sample, REDUX, PETS)
    assert len(problems) == 3, problems
    text = " ".join(problems)
    assert "not numbers, e.g. 'dog'" in text and "NaN or infinite value(s), on row(s) 2" in text
    assert "outside [0, 1], e.g. 1.2 (row 3)" in text
    with pytest.raises(PodiumError, match=r"submission_format: probability\) \(3 problem"):
        validate_class_submission(frame, sample, REDUX, PETS)


def test_probabilities_need_every_class_column_and_rows_summing_to_1_for_log_loss():
    sample = _sample({name: ["0"] * 4 for name in LEAVES})
    good = class_form_frame(sample, IDS, LEAF_PROBS, LEAVES, LEAF)
    assert class_submission_problems(good, sample, LEAF, LEAVES) == []
    halved = good.assign(rust=(good["rust"].astype(float) / 2).astype(str))
    problems = class_submission_problems(halved, sample, LEAF, LEAVES)
    assert len(problems) == 1 and "do not sum to 1" in problems[0] and "log_loss" in problems[0]
    assert class_submission_problems(halved, sample, PLANT, LEAVES) == []  # column-wise AUC reads columns only
    dropped = good.drop(columns=["rust"])
    problems = class_submission_problems(dropped, sample, PLANT, LEAVES)
    assert any("missing ['rust']" in p for p in problems)
    fewer_classes = _sample({name: ["0"] * 4 for name in LEAVES[:3]})
    problems = class_submission_problems(good.drop(columns=["scab"]), fewer_classes, PLANT, LEAVES)
    assert problems == ["1 class(es) have no column in the sample: 'scab'"]


def test_top_k_rows_need_k_distinct_known_labels():
    sample = _sample({"label": ["a b"] * 4})
    frame = _sample({"label": ["cat dog", "cat", "dog dog", "cat horse"]})
    problems = class_submission_problems(frame, sample, TOP2, PETS)
    text = " ".join(problems)
    assert "1 row(s) without exactly 2 space-separated labels, e.g. row(s) 2" in text
    assert "naming a label twice, e.g. row(s) 3" in text and "'horse'" in text


def test_number_problems_name_empty_text_nan_and_out_of_range_values():
    assert number_problems(["0", "0.5", "1", "1e-9"], "p", 0, 1) == []
    problems = number_problems(["", "x", "inf", "-0.1", "3"], "p", 0.0, 1.0)
    assert problems == ["column 'p': 1 empty value(s), on row(s) 1",
                        "column 'p': 1 value(s) that are not numbers, e.g. 'x'",
                        "column 'p': 1 NaN or infinite value(s), on row(s) 3",
                        "column 'p': 2 value(s) outside [0, 1], e.g. -0.1 (row 4), 3 (row 5)"]
    assert number_problems(["-5", "1e6"], "n") == []  # no bounds: any finite number
    assert number_problems(["-5"], "n", low=0) == ["column 'n': 1 value(s) outside [0, inf], e.g. -5 (row 1)"]
    assert number_problems(["3", "2.5", "-1e0"], "g", integers=True) == [  # QWK's grades (regression's form)
        "column 'g': 1 value(s) that are not integer grades, e.g. 2.5 (row 2)"]


# ---- the sample shows the form ----------------------------------------------------------------------
def test_a_text_label_sample_for_a_probability_spec_is_refused_when_read(tmp_path):
    path = _csv(tmp_path / "sample.csv", _sample({"label": ["cat", "dog", "cat", "cat"]}))
    with pytest.raises(PodiumError, match="does not look like a submission_format: probability") as err:
        read_competition_sample(path, REDUX)
    assert "holds text such as 'cat', 'dog'" in err.value.received and "label-form sample" in err.value.received
    assert "`make spec`" in err.value.fix


def test_a_label_sample_for_a_probabilities_spec_is_refused(tmp_path):
    path = _csv(tmp_path / "sample.csv", _sample({"label": ["cat", "dog", "cat", "cat"]}))
    with pytest.raises(PodiumError, match="probabilities") as err:
        read_competition_sample(path, LEAF)
    assert "not a column per class: a label-form sample" in err.value.received


def test_a_column_per_class_sample_read_for_one_label_column_says_which_form_it_is(tmp_path):
    path = _csv(tmp_path / "sample.csv", _sample({name: ["0.25"] * 4 for name in LEAVES}))
    with pytest.raises(PodiumError, match=r"has no column \['label'\]") as err:
        read_competition_sample(path, _spec())
    assert "set submission_format: probabilities" in err.value.fix
    sample = read_competition_sample(path, PLANT, LEAVES)
    assert list(sample.columns) == ["id", *LEAVES] and sample["id"].tolist() == IDS


def test_class_columns_and_positive_class_are_checked_against_the_classes(tmp_path):
    path = _csv(tmp_path / "sample.csv", _sample({name: ["0"] * 4 for name in ["healthy", "rust", "blight"]}))
    with pytest.raises(PodiumError) as err:
        read_competition_sample(path, PLANT, LEAVES)
    assert "1 sample column(s) name no class: 'blight'" in err.value.received
    assert "2 class(es) have no column in the sample: 'multiple_diseases', 'scab'" in err.value.received
    redux = _spec(metric="log_loss", submission_format="probability", positive_class="dogs")
    problems = sample_form_problems(_sample({"label": ["0.5"] * 4}), redux, PETS)
    assert problems == ["positive_class 'dogs' is not a class of the training labels. (expected one of: cat, dog)"]


def test_a_top_k_sample_with_another_k_and_a_float_sample_out_of_0_1_are_refused():
    problems = sample_form_problems(_sample({"label": ["a b c d e"] * 4}), TOP2)
    assert problems == ["the sample's rows hold 5 space-separated labels, the spec's k is 2"]
    problems = sample_form_problems(_sample({"label": ["3.5", "0", "12", "1"]}), REDUX)
    assert "outside 0..1 (from 0 to 12)" in problems[0] and "number (regression)" in problems[0]
    assert sample_form_problems(_sample({"label": ["0.5", "", "0.5", "0.5"]}), REDUX, PETS) == []


# ---- through the task, as make predict, a blend and the inference kernel call it --------------------
def test_the_task_writer_gives_an_undecodable_image_the_prior_and_make_submit_revalidates(tmp_path):
    spec = _spec(metric="log_loss", submission_format="probability", classes=tuple(PETS))
    rows = pd.DataFrame({"id": IDS})
    readable = np.array([True, False, True, True])
    predictions = base.TestPredictions(rows=rows, readable=readable, values=PROBS[readable].astype("float32"))
    sample = _sample({"label": ["0.5"] * 4})
    task = get_task("classification")
    path = tmp_path / "sub.csv"
    summary = task.write_submission(None, spec, PETS, np.array([0.7, 0.3], "float32"), predictions, sample, path)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    np.testing.assert_allclose(written["label"].astype(float), [0.1, 0.3, 0.5, 1.0], atol=1e-7)  # row 2: prior
    assert summary.n_rows == 4 and summary.n_unreadable == 1 and summary.counts == {"cat": 3, "dog": 1}
    task.validate_submission(written, sample, spec, pd.DataFrame())  # what `make submit` re-runs offline
    with pytest.raises(PodiumError, match="outside"):
        task.validate_submission(written.assign(label=["1.5"] * 4), sample, spec, pd.DataFrame())


def test_every_metric_of_a_form_scores_what_the_writer_wrote(tmp_path):
    """What is written is what the metric reads: the written P(dog) scores as the softmax rows do."""
    truth = np.array([0, 1, 1, 1])
    frame = class_form_frame(_sample({"label": ["0"] * 4}), IDS, PROBS, PETS, REDUX)
    written = resolve_metric("log_loss")(truth, frame["label"].astype(float))
    assert written == pytest.approx(resolve_metric("log_loss")(truth, PROBS), rel=1e-6)


def test_a_multilabel_probabilities_submission_writes_each_sigmoid_as_it_is(tmp_path):
    """mean_columnwise_auc scores multi-label runs too: a column per class, the sigmoids not renormalised."""
    from types import SimpleNamespace

    spec = _spec(task="multilabel", layout="csv", labels_csv="labels.csv", metric="mean_columnwise_auc",
                 submission_format="probabilities")
    sigmoids = np.array([[0.9, 0.8, 0.1, 0.7], [0.1, 0.1, 0.2, 0.05], [0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 1.0, 1.0]])
    predictions = base.TestPredictions(rows=pd.DataFrame({"id": IDS}), readable=np.ones(4, bool),
                                       values=sigmoids.astype("float32"))
    sample = _sample({name: ["0.5"] * 4 for name in LEAVES[::-1]})
    task = get_task("multilabel")
    path = tmp_path / "sub.csv"
    summary = task.write_submission(SimpleNamespace(run_dir=tmp_path), spec, LEAVES, np.full(4, 0.25), predictions,
                                    sample, path)
    written = pd.read_csv(path, dtype=str)
    assert list(written.columns) == ["id", *LEAVES[::-1]]
    np.testing.assert_allclose(written[LEAVES].astype(float).to_numpy(), sigmoids, atol=1e-7)
    assert summary.counts["healthy"] == 3  # the label sets at 0.5 thresholds: what the run predicted
    index = pd.DataFrame({"split": ["train"], "ok": [True], "label": [" ".join(LEAVES)]})  # the classes' source
    task.validate_submission(written, sample, spec, index)
    with pytest.raises(PodiumError, match="outside"):
        task.validate_submission(written.assign(rust="2"), sample, spec, index)
