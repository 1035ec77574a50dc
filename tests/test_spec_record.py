"""The drafted spec as one record (podium.spec.record), the folder view it is drafted from (podium.spec.scan),
and what drafting and checking ask of each task (Task.spec_*): real files in a temporary folder, no mocks."""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.spec import Draft, Drafted, scan_source
from podium.spec.draft import LABEL_FIELDS
from podium.spec.record import LINE, flip_guess
from podium.spec.scan import few, under
from podium.tasks import TASKS, get_task


def test_a_draft_is_one_record_of_values_and_reasons():
    draft = Draft({"slug": Drafted("pets", "the slug"), "title": Drafted("", "")}, ["found: pets"], {})
    assert draft.values == {"slug": "pets", "title": ""} and draft.notes == {"slug": "the slug"}
    draft.set(slug="cats", labels_csv="labels.csv")
    assert draft.fields["slug"] == Drafted("cats", "the slug")  # a new value keeps its reason
    assert list(draft.fields) == ["slug", "title", "labels_csv"]  # a field not drafted comes last, unexplained
    assert draft.yaml_text() == "# found: pets\nslug: cats  # the slug\ntitle: \"\"\nlabels_csv: labels.csv\n"


def test_a_long_reason_is_written_above_its_field():
    reason = "why " * 40
    text = Draft({"metric": Drafted("accuracy", reason.strip())}, [], {}).yaml_text()
    lines = text.splitlines()
    assert lines[-1] == "metric: accuracy" and all(line.startswith("# ") for line in lines[:-1])
    assert all(len(line) <= LINE for line in lines)


def test_flips_are_refused_for_symbol_classes_only():
    assert flip_guess([str(d) for d in range(10)]).value is False
    assert flip_guess(["cat", "dog"]) == Drafted(None, flip_guess([]).reason)


def test_the_view_sees_zips_as_unpacked_and_names_a_zip_inside_a_zip(tmp_path):
    source = tmp_path / "comp"
    (source / "train" / "cat").mkdir(parents=True)
    (source / "train" / "cat" / "1.png").write_bytes(b"x")
    with zipfile.ZipFile(source / "test.zip", "w") as archive:
        archive.writestr("test/7.png", b"x")
        archive.writestr("__MACOSX/test/._7.png", b"x")
        archive.writestr("extra.zip", b"x")
    pd.DataFrame({"id": ["7"], "label": ["cat"]}).to_csv(source / "sample_submission.csv", index=False)
    view = scan_source(source)
    assert view.entries == {"sample_submission.csv": "file", "test.zip": "zip", "train": "folder"}
    assert sorted(f.rel for f in view.images()) == ["test/7.png", "train/cat/1.png"]
    assert view.find("./test/7.png").member == "test/7.png" and view.find("test/7.png").read() == b"x"
    assert [f.rel for f in view.csvs()] == ["sample_submission.csv"]
    assert view.problems == ["test.zip holds another zip (extra.zip): unpack the outer zip into SRC and draft again"]
    with pytest.raises(PodiumError, match="does not exist"):
        scan_source(tmp_path / "missing")


def test_path_helpers():
    assert under("train/a.png", "") and under("train/a.png", ".") and under("train/a.png", "train/")
    assert not under("training/a.png", "train")
    assert few(list("abcdefg")) == "a, b, c, d, e and 2 more"


@pytest.mark.parametrize("name, form_from_sample, label_sets, checks, classes", [
    ("classification", True, False, True, ["a", "b"]),
    ("localization", False, False, False, ["", "a", "b"]),
    ("segmentation", False, False, False, None),
    ("multilabel", True, True, False, None),
    ("regression", True, False, False, None),
])
def test_what_make_spec_asks_of_each_task(name, form_from_sample, label_sets, checks, classes):
    task = get_task(name)
    assert (task.spec_form_from_sample, task.spec_label_sets, task.spec_checks_labels) == (form_from_sample,
                                                                                          label_sets, checks)
    assert task.spec_classes(pd.Series(["b", "a", "", "a"])) == classes


def test_every_registered_task_answers_make_specs_questions():
    for task in TASKS.values():
        assert isinstance(task.spec_form_from_sample, bool) and isinstance(task.spec_label_sets, bool)
        assert set(task.keys.label_fields) <= set(LABEL_FIELDS)  # a draft can write each of its label fields
