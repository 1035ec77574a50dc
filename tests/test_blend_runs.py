"""podium.blend.runs: a finished run read as a blend sees it (config, split record, OOF rows sorted by id), and
runs of another task, labels or classes refused naming both; on the session's tiny demo run."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from podium.blend import runs
from podium.errors import PodiumError
from podium.tasks import get_task


@pytest.fixture(scope="module")
def loaded(tiny_run):
    return runs.load_run(tiny_run.run_id, get_task("classification"), tiny_run.runs_dir)


def test_a_finished_run_is_read_with_its_split_and_sorted_oof_rows(tiny_run, loaded):
    assert loaded.run_id == tiny_run.run_id and loaded.cfg.run_id == tiny_run.run_id
    assert loaded.data.get("split") and loaded.data.get("split_fingerprint")
    ids = loaded.oof["id"].tolist()
    assert ids == sorted(ids) and set(loaded.oof["fold"]) == {0}
    assert loaded.class_probabilities and loaded.probs.shape == (len(ids), len(loaded.classes))
    np.testing.assert_allclose(loaded.probs.sum(1), 1, atol=1e-4)
    runs.check_compatible([loaded, dataclasses.replace(loaded, run_id="twin")])


def test_a_run_of_another_task_is_refused_naming_both(tiny_run):
    with pytest.raises(PodiumError, match=f"Run '{tiny_run.run_id}' trained classification, not regression"):
        runs.load_run(tiny_run.run_id, get_task("regression"), tiny_run.runs_dir)
    with pytest.raises(PodiumError, match="has no saved config") as caught:
        runs.run_config("no-such-run", tiny_run.runs_dir)
    assert "config.yaml" in caught.value.expected


def test_runs_that_differ_in_task_classes_or_labels_are_refused_naming_both(loaded):
    labels = loaded.oof.assign(label=loaded.oof["label"].to_numpy()[::-1])
    cases = [(dataclasses.replace(loaded, run_id="other", cfg=dataclasses.replace(loaded.cfg, task="multilabel")),
              "task"),
             (dataclasses.replace(loaded, run_id="other", classes=loaded.classes[::-1]), "classes"),
             (dataclasses.replace(loaded, run_id="other", oof=labels), "OOF labels")]
    for other, what in cases:
        with pytest.raises(PodiumError, match=f"differ in {what}") as caught:
            runs.check_compatible([loaded, other])
        assert loaded.run_id in caught.value.expected and "other" in caught.value.received


def test_a_blend_name_is_never_reused_for_other_runs(tmp_path, tiny_run):
    spec = runs.load_blend_spec(runs=["a", "b"], name="pair")
    runs.check_name_free(tmp_path / "pair", spec)  # nothing there yet
    (tmp_path / "pair").mkdir()
    (tmp_path / "pair" / "blend.yaml").write_text("runs: [a, b]\nmethod: weights\n")
    runs.check_name_free(tmp_path / "pair", spec)  # the same blend again
    with pytest.raises(PodiumError, match="already names another blend") as caught:
        runs.check_name_free(tmp_path / "pair", runs.load_blend_spec(runs=["a", "c"], name="pair"))
    assert "['a', 'b']" in caught.value.expected and "['a', 'c']" in caught.value.received
    saved = Path(tiny_run.runs_dir) / tiny_run.run_id / "config.yaml"
    (tmp_path / "pair" / "config.yaml").write_text(saved.read_text())  # a blend's folder holds a config too
    with pytest.raises(PodiumError, match="is a blend, which has no out-of-fold"):
        runs.run_config("pair", tmp_path)
