"""podium.artefacts: every hand-over artefact carries what made it, and the one reader checks it (issue 21,
class 2). Real files written by the real writer; each damage is done to the bytes on disk."""

import json

import numpy as np
import pandas as pd
import pytest

from podium import artefacts
from podium.errors import PodiumError

REMAKE = "make predict with run r1's config"


def _index(hashes=("a", "b", "c"), train=("x", "y")):
    rows = [{"id": f"t{k}", "split": "test", "hash": h, "ok": True} for k, h in enumerate(hashes)]
    rows += [{"id": i, "split": "train", "hash": f"h{i}", "ok": True} for i in train]
    return pd.DataFrame(rows)


def _predictions(folder, values=None, kind="probabilities", folds=None, inputs=()):
    folder.mkdir(parents=True, exist_ok=True)
    values = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], dtype="float32") if values is None else values
    path = folder / "test_predictions.npy"
    np.save(path, values)
    pd.DataFrame({"id": ["t0", "t1", "t2"], "ok": True}).to_csv(folder / "test_ids.csv", index=False)
    artefacts.stamp(path, kind=kind, images=artefacts.test_images(_index()), remake=REMAKE, made_by="make predict",
                    folds=folds if folds is not None else [{"fold": 0, "finished": True}], inputs=inputs,
                    companions=[folder / "test_ids.csv"])
    return path


def _read(path, **more):
    return artefacts.read(path, what="run r1's test predictions", remake="unused: the record's command wins",
                          **{"kinds": ("probabilities",), "images": artefacts.test_images(_index()), **more})


def _refused(path, match, **more):
    with pytest.raises(PodiumError, match=match) as caught:
        _read(path, **more)
    assert str(path) in str(caught.value) and caught.value.expected and caught.value.received
    return caught.value


def test_a_stamped_artefact_reads_back_whole_with_its_record(tmp_path):
    path = _predictions(tmp_path / "r1")
    read = _read(path)
    np.testing.assert_array_equal(read.values, np.load(path))
    assert read.kind == "probabilities" and read.unfinished == [] and read.notes == []
    record = json.loads(artefacts.record_path(path).read_text())
    assert record["images"] == artefacts.test_images(_index()) and record["finished"] is True
    assert set(record["companions"]) == {"test_ids.csv"} and record["remake"] == REMAKE


@pytest.mark.parametrize("cut", [1, 40, 127])
def test_a_truncated_file_is_named_with_the_command_that_remakes_it(tmp_path, cut):
    path = _predictions(tmp_path / "r1")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - cut])
    error = _refused(path, "changed since")
    assert error.fix == REMAKE


def test_a_truncated_file_without_a_record_is_damaged_not_a_traceback(tmp_path):
    path = _predictions(tmp_path / "r1")
    artefacts.record_path(path).unlink()
    path.write_bytes(path.read_bytes()[:60])
    _refused(path, "is damaged", legacy_ok=True)
    table = tmp_path / "oof.parquet"
    pd.DataFrame({"id": ["a", "b"], "prob_x": [0.1, 0.9]}).to_parquet(table)
    table.write_bytes(table.read_bytes()[:50])
    with pytest.raises(PodiumError, match="is damaged"):
        artefacts.read(table, what="fold 0 oof", remake="make train", legacy_ok=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_refused_even_when_the_record_matches(tmp_path, bad):
    values = np.array([[0.9, 0.1], [bad, 0.8], [0.5, 0.5]], dtype="float32")
    path = _predictions(tmp_path / "r1", values=values)  # stamped as it is: a diverged model wrote it so
    error = _refused(path, "NaN or infinite values in 1 of 3 rows")
    assert error.fix == REMAKE


def test_nan_in_an_oof_table_is_refused(tmp_path):
    table = tmp_path / "fold-0" / "oof.parquet"
    table.parent.mkdir()
    pd.DataFrame({"id": ["x", "y"], "label": [0, 1], "prob_a": [0.2, np.nan], "prob_b": [0.8, 0.1]}).to_parquet(table)
    artefacts.stamp(table, kind="probabilities", images=artefacts.train_images(_index()), remake="make train FORCE=1",
                    made_by="make train", folds=[{"fold": 0, "finished": True}])
    with pytest.raises(PodiumError, match="NaN") as caught:
        artefacts.read(table, what="fold 0 oof", remake="x", images=artefacts.train_images(_index()))
    assert caught.value.fix == "make train FORCE=1"


@pytest.mark.parametrize("index", [_index(hashes=("a", "b", "new")), _index(hashes=("a", "b", "c", "d")),
                                   _index(hashes=("a", "b"))])
def test_predictions_of_other_test_images_are_refused(tmp_path, index):
    path = _predictions(tmp_path / "r1")
    error = _refused(path, "other images", images=artefacts.test_images(index))
    assert error.fix.startswith(REMAKE)


def test_the_images_fingerprint_reads_content_not_order():
    index = _index()
    assert artefacts.test_images(index) == artefacts.test_images(index.iloc[::-1])
    assert artefacts.test_images(index) != artefacts.test_images(_index(hashes=("a", "c", "b")))  # pixels swapped
    assert artefacts.train_images(index) == artefacts.train_images(_index(hashes=("q", "r", "s")))  # test only


def test_unfinished_folds_are_refused_unless_allowed_and_then_said(tmp_path):
    path = _predictions(tmp_path / "r1", folds=[{"fold": 0, "finished": True}, {"fold": 1, "finished": False}])
    error = _refused(path, r"fold\(s\) \[1\] whose training did not finish")
    assert "make train" in error.fix
    read = _read(path, allow_unfinished=True)
    assert read.unfinished == [1] and any(n.startswith("UNFINISHED") for n in read.notes)


@pytest.mark.parametrize("kind", ["ranks", "masks", "numbers"])
def test_another_kind_is_refused(tmp_path, kind):
    path = _predictions(tmp_path / "r1", kind=kind)
    error = _refused(path, f"holds {kind}, which cannot be read as probabilities")
    assert "rank" in error.fix


def test_a_changed_companion_or_input_is_refused(tmp_path):
    folder = tmp_path / "r1"
    metrics = folder / "fold-0" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{"val_score": 0.5}')
    path = _predictions(folder, inputs=[metrics])
    assert list(json.loads(artefacts.record_path(path).read_text())["inputs"]) == ["fold-0/metrics.json"]
    metrics.write_text('{"val_score": 0.7}')  # the fold was retrained after the predictions
    _refused(path, "changed since")
    metrics.write_text('{"val_score": 0.5}')
    _read(path)
    pd.DataFrame({"id": ["t0", "t2", "t1"], "ok": True}).to_csv(folder / "test_ids.csv", index=False)
    _refused(path, "test_ids.csv, which changed")
    (folder / "test_ids.csv").unlink()
    _refused(path, "test_ids.csv, which changed or is gone")


def test_a_copied_run_folder_still_checks_its_own_inputs(tmp_path):
    import shutil

    folder = tmp_path / "r1"
    (folder / "fold-0").mkdir(parents=True)
    (folder / "fold-0" / "metrics.json").write_text("{}")
    _predictions(folder, inputs=[folder / "fold-0" / "metrics.json"])
    shutil.copytree(folder, tmp_path / "copy")
    (tmp_path / "copy" / "fold-0" / "metrics.json").write_text('{"retrained": true}')
    _refused(tmp_path / "copy" / "test_predictions.npy", "changed since")
    _read(folder / "test_predictions.npy")


def test_missing_file_missing_record_and_damaged_record(tmp_path):
    with pytest.raises(PodiumError, match="does not exist") as caught:
        _read(tmp_path / "nothing.npy")
    assert "unused" in caught.value.fix  # no record to read the command from: the caller's
    path = _predictions(tmp_path / "r1")
    artefacts.record_path(path).write_text("{not json")
    with pytest.raises(PodiumError, match="record .* is damaged"):
        _read(path)
    artefacts.record_path(path).unlink()
    _refused(path, "has no record of what made it")
    read = _read(path, legacy_ok=True)
    assert read.record is None and "no record" in read.notes[0]


def test_masks_are_checked_chunk_by_chunk_to_the_last_row(tmp_path, monkeypatch):
    monkeypatch.setattr(artefacts, "CHUNK_ROWS", 4)  # several chunks on a small array
    masks = np.zeros((10, 8, 8, 1), dtype="float16")
    masks[9, 7, 7, 0] = np.nan  # the very last pixel of the last image
    path = tmp_path / "test_predictions.npy"
    np.save(path, masks)
    artefacts.stamp(path, kind="masks", images="x", remake="make predict", made_by="make predict")
    with pytest.raises(PodiumError, match="NaN or infinite values in 1 of 10 rows"):
        artefacts.read(path, what="masks", remake="make predict", kinds=("masks",), images="x", mmap=True)
    masks[9, 7, 7, 0] = 0.5
    np.save(path, masks)
    artefacts.stamp(path, kind="masks", images="x", remake="make predict", made_by="make predict")
    assert artefacts.read(path, what="masks", remake="make predict", kinds=("masks",), images="x").values.shape == \
        (10, 8, 8, 1)


def test_an_artefact_of_images_handed_in_memory_says_it_was_not_checked_against_the_index(tmp_path):
    path = tmp_path / "oof_outputs.npy"
    np.save(path, np.zeros((3, 2), dtype="float32"))
    artefacts.stamp(path, kind="probabilities", images=None, remake="make train", made_by="make train")
    read = artefacts.read(path, what="fold 0 outputs", remake="make train", images=artefacts.train_images(_index()))
    assert "not in an index" in read.notes[0]
