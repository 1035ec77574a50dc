"""`make spec` reads the submission's form from the sample's columns and values, drafts the metric that
usually scores it, and writes how it decided; `check` and `make data` refuse a sample that shows another form
than the spec's."""

from __future__ import annotations

import pandas as pd
import pytest

from forms_support import demo_competition
from podium.data.competitions import load_competition
from podium.data.sample_form import infer_submission_form
from podium.spec import draft_spec, write_draft
from tests_support import spec_check
from podium.errors import PodiumError
from tests_support import make_data

PETS = ["cat", "dog"]
LEAVES = ["healthy", "multiple_diseases", "rust", "scab"]


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"id": [str(k) for k in range(n)], **columns}, dtype=str)


@pytest.mark.parametrize("columns, classes, form, metric", [
    ({name: ["0.25"] * 3 for name in LEAVES}, LEAVES, "probabilities", "log_loss"),
    ({"label": ["0.5"] * 3}, PETS, "probability", "log_loss"),
    ({"label": ["0", "0", "1"]}, PETS, "probability", "log_loss"),  # 0/1 that are not class names
    ({"Pawpularity": ["12", "59.5", "96"]}, PETS, "number", "rmse"),
    ({"label": ["a b c", "b c a", "c a b"]}, ["a", "b", "c", "d"], "top_k", "map_at_k(k=3)"),
    ({"label": ["cat", "dog", "cat"]}, PETS, "label", "accuracy"),
    ({"label": ["0", "3", "4"]}, ["0", "1", "2", "3", "4"], "label", "accuracy"),  # APTOS grades as classes
])
def test_the_form_and_its_metric_from_the_sample(columns, classes, form, metric):
    label = next(iter(columns))
    guess = infer_submission_form(_frame(**columns), "id", label, classes)
    assert (guess.form, guess.metric) == (form, metric)
    assert guess.reason and "Evaluation page" in guess.metric_note


def test_probability_names_the_class_it_takes_and_asks_for_one_beyond_two_classes():
    two = infer_submission_form(_frame(label=["0.5"] * 3), "id", "label", PETS)
    assert two.positive_class == "dog" and "CHECK" in two.positive_note and "'dog'" in two.positive_note
    three = infer_submission_form(_frame(label=["0.5"] * 3), "id", "label", ["a", "b", "c"])
    assert three.positive_class == "" and three.positive_note.startswith("MUST be set")


def test_space_separated_names_are_top_k_or_multi_label_and_say_why():
    sets = infer_submission_form(_frame(tags=["a b", "c", "a b c"]), "id", "tags", ["a", "b", "c"], label_sets=True)
    assert (sets.form, sets.multilabel, sets.metric) == ("label", True, "micro_f1")
    assert "train labels are label sets" in sets.reason
    ranked = infer_submission_form(_frame(label=["a b"] * 3), "id", "label", ["a", "b", "c"])
    assert (ranked.form, ranked.k) == ("top_k", 2) and "each train image has one label" in ranked.reason
    odd = infer_submission_form(_frame(label=["a b", "c", "a"]), "id", "label", ["a", "b", "c"])
    assert odd.form == "label" and "CHECK" in odd.reason


def test_class_columns_naming_no_train_class_are_noted():
    guess = infer_submission_form(_frame(healthy=["0"], rust=["0"], blight=["0"]), "id", "healthy", ["healthy", "rust"])
    assert guess.form == "probabilities" and "blight" in guess.notes[0]


def _draft(source, out):
    write_draft(draft_spec(source), out)
    return load_competition(str(out)), out.read_text()


def test_a_redux_like_folder_drafts_probability_of_the_last_class_and_log_loss(tmp_path):
    source, _ = demo_competition(tmp_path / "redux", PETS[::-1], lambda n: {"label": ["0.5"] * n}, 20)
    spec, text = _draft(source, tmp_path / "spec.yaml")
    assert (spec.submission_format, spec.positive_class, spec.resolved_metric.name) == ("probability", "dog", "log_loss")
    assert "holds numbers in 0..1 (e.g. 0.5): P(one class)" in text and "CHECK: the class" in text
    assert spec_check(spec, source).ok


def test_a_plant_like_folder_drafts_probabilities_and_a_top_3_sample_drafts_map_at_3(tmp_path):
    classes = ["airplane", "bird", "frog", "truck"]
    source, _ = demo_competition(tmp_path / "plant", classes,
                                 lambda n: {name: ["0.25"] * n for name in ["truck", "airplane", "frog", "bird"]}, 5)
    spec, text = _draft(source, tmp_path / "plant.yaml")
    assert (spec.submission_format, spec.resolved_metric.name) == ("probabilities", "log_loss")
    assert "4 number columns beyond the id, 4 of them named as classes found in train" in text
    assert "mean_columnwise_auc" in text  # the other metric of this form, named for the user to check
    assert spec_check(spec, source).ok
    source, _ = demo_competition(tmp_path / "top3", classes, lambda n: {"label": ["airplane bird frog"] * n}, 5)
    spec, text = _draft(source, tmp_path / "top3.yaml")
    assert (spec.submission_format, spec.resolved_top_k, spec.resolved_metric.label) == ("top_k", 3, "map_at_k(k=3)")
    assert spec_check(spec, source).ok


# ---- bad contracts, refused before anything trains ----------------------------------------------------
def _spec_file(path, **fields) -> str:
    lines = ["slug: forms-bad", "layout: folder", *(f"{k}: {v}" for k, v in fields.items())]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_log_loss_on_a_label_form_is_refused_at_load(tmp_path):
    with pytest.raises(PodiumError, match="cannot score a submission of form 'label'"):
        load_competition(_spec_file(tmp_path / "s.yaml", metric="log_loss"))


def test_top_k_without_k_is_refused_at_load(tmp_path):
    """map_at_k is the metric of a top_k form, and it needs k: either place missing is refused."""
    with pytest.raises(PodiumError, match="needs the parameter k") as err:
        load_competition(_spec_file(tmp_path / "s.yaml", metric="map_at_k", submission_format="top_k"))
    assert "{name: map_at_k, k: 5}" in err.value.fix.replace("metric: ", "")
    with pytest.raises(PodiumError, match="top_k without k"):
        load_competition(_spec_file(tmp_path / "s.yaml", metric="map_at_k(k=5)", submission_format="top_k", top_k=-1))
    assert load_competition(_spec_file(tmp_path / "s.yaml", metric="map_at_k(k=5)",
                                       submission_format="top_k")).resolved_top_k == 5


def test_make_data_refuses_a_label_sample_for_a_log_loss_probability_spec(tmp_path):
    source, _ = demo_competition(tmp_path / "redux", PETS, lambda n: {"label": ["cat"] * n}, 5)
    spec = _spec_file(tmp_path / "s.yaml", metric="log_loss", submission_format="probability")
    with pytest.raises(PodiumError, match="does not look like a submission_format: probability") as err:
        make_data(spec, str(tmp_path / "data"), str(source))
    assert "holds text such as 'cat'" in err.value.received
    assert "label-form sample" in err.value.received
    assert spec_check(load_competition(spec), source).problems  # `make spec`'s check names it too


def test_make_data_refuses_a_class_column_that_names_no_class_and_an_unknown_positive_class(tmp_path):
    source, _ = demo_competition(tmp_path / "plant", ["bird", "frog"],
                                 lambda n: {"bird": ["0.5"] * n, "frogs": ["0.5"] * n}, 5)
    spec = _spec_file(tmp_path / "s.yaml", metric="mean_columnwise_auc", submission_format="probabilities")
    with pytest.raises(PodiumError) as err:
        make_data(spec, str(tmp_path / "data"), str(source))
    assert "name no class: 'frogs'; did you mean 'frog'?" in err.value.received
    assert "class(es) have no column in the sample: 'frog'" in err.value.received
    source, _ = demo_competition(tmp_path / "redux", PETS, lambda n: {"label": ["0.5"] * n}, 5)
    spec = _spec_file(tmp_path / "p.yaml", metric="log_loss", submission_format="probability", positive_class="dogs")
    with pytest.raises(PodiumError, match="positive_class 'dogs' is not a class"):
        make_data(spec, str(tmp_path / "data2"), str(source))


def test_a_positive_class_outside_fixed_classes_and_a_quoted_top_k_are_refused_at_load(tmp_path):
    with pytest.raises(PodiumError, match="positive_class that is not one of its classes") as err:
        load_competition(_spec_file(tmp_path / "s.yaml", metric="roc_auc", submission_format="probability",
                                    classes="[benign, malignant]", positive_class="melanoma"))
    assert "benign, malignant" in err.value.expected
    with pytest.raises(PodiumError, match="top_k that is not a whole number"):
        load_competition(_spec_file(tmp_path / "s.yaml", metric="map_at_k(k=3)", submission_format="top_k",
                                    top_k='"3"'))


# ---- number and grade targets: `make spec` drafts regression, or names qwk's two choices -----------------
def _pawpularity_like(folder, column: str, targets: list[str], placeholder: str):
    """A PetFinder-like download: train/ and test/ images named by id (demo images), a train CSV `Id,<column>`
    of the targets, a sample `Id,<column>` holding `placeholder`."""
    import zipfile

    from forms_support import DEMO_DIR

    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as source:
        members = sorted(m for m in source.namelist() if m.endswith(".jpg"))
        train_ids = [f"{k:04x}0a1b" for k in range(len(targets))]
        test_ids = [f"{k:04x}ffee" for k in range(4)]
        for image_id, member in zip(train_ids + test_ids, members[:len(targets)] + members[-4:]):
            where = "train" if image_id in train_ids else "test"
            (folder / where / f"{image_id}.jpg").write_bytes(source.read(member))
    pd.DataFrame({"Id": train_ids, column: targets}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"Id": test_ids, column: [placeholder] * 4}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def test_a_petfinder_like_folder_drafts_regression_with_rmse_that_make_spec_checks_and_make_data_reads(
        tmp_path, capsys):
    from podium.cli.main import main

    scores = [f"{12 + 6.35 * k:.2f}" for k in range(12)]  # Pawpularity-like floats, 12 .. 81.85
    source = _pawpularity_like(tmp_path / "petfinder", "Pawpularity", scores, "50.5")
    out = tmp_path / "petfinder.yaml"
    assert main(["spec", "--source", str(source), "--out", str(out)]) == 0  # drafts, loads and checks it
    assert "spec: checked: `make data` would index 12 train images" in capsys.readouterr().out
    spec, text = load_competition(str(out)), out.read_text()
    assert (spec.task, spec.submission_format, spec.resolved_metric.name) == ("regression", "number", "rmse")
    assert (spec.label_column, spec.submission_label_column, spec.classes) == ("Pawpularity", "Pawpularity", ())
    assert "numbers that are not whole (12 distinct, from 12 to 81.85)" in text
    assert "Evaluation page: rmse (PetFinder Pawpularity) or mae" in text and "qwk" in text
    assert "the target: 12 distinct numbers" in text and "classes:" not in text
    data = make_data(str(out), str(tmp_path / "data"), str(source))  # `make data` reads it as drafted
    assert (data.task, data.n_train, data.n_test) == ("regression", 12, 4)
    assert sorted(data.label_counts) == ["q1", "q2", "q3", "q4", "q5"]  # target quintiles, what folds stratify on
    # a share in 0..1 (shapes-regression) is a number too, not P(one class): the train labels decide
    shares = _pawpularity_like(tmp_path / "shares", "share", [f"{0.05 + 0.07 * k:.3f}" for k in range(12)], "0.5")
    spec, text = _draft(shares, tmp_path / "shares.yaml")
    assert (spec.task, spec.submission_format, spec.resolved_metric.name) == ("regression", "number", "rmse")
    assert spec_check(spec, shares).ok


def test_integer_grades_draft_qwk_and_name_its_two_choices(tmp_path):
    grades = [str(k % 5) for k in range(15)]
    source = _pawpularity_like(tmp_path / "aptos", "diagnosis", grades, "0")
    spec, text = _draft(source, tmp_path / "aptos.yaml")
    assert (spec.task, spec.submission_format, spec.resolved_metric.name) == ("classification", "label", "qwk")
    assert "grades 0..4 (its name says so)" in text and "flip_invariant: null" in text
    flat = " ".join(line.lstrip("# ") for line in text.splitlines())
    assert "(1) task classification with metric: qwk" in flat and "(2) task: regression with metric: qwk" in flat
    assert spec_check(spec, source).ok
    # the note's other choice, two lines changed, loads and checks: regression, qwk, integer-grade numbers
    other = text.replace("task: classification", "task: regression").replace(
        "submission_format: label", "submission_format: number")
    (tmp_path / "aptos-regression.yaml").write_text(other)
    regression = load_competition(str(tmp_path / "aptos-regression.yaml"))
    assert (regression.task, regression.resolved_metric.name) == ("regression", "qwk")
    assert spec_check(regression, source).ok
    # whole-number class codes under a plain name (Cassava's 0..4 `label`): accuracy drafted, qwk's choices noted
    codes = _pawpularity_like(tmp_path / "cassava", "label", grades, "4")
    spec, text = _draft(codes, tmp_path / "cassava.yaml")
    assert (spec.task, spec.resolved_metric.name) == ("classification", "accuracy")
    assert "if it says quadratic weighted kappa" in " ".join(line.lstrip("# ") for line in text.splitlines())
