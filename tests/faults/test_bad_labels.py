"""Fault class "bad labels": classes too small to split, and labels that change under a saved split or a
trained run. Each ends as a correct split that says what it did, or a refusal naming the fix."""

import zipfile

import pandas as pd
import pytest

from podium.cli.main import main
from podium.data.folds import TRAIN_ONLY, load_or_make_split, make_holdout, make_kfold, split_notes
from podium.errors import PodiumError
from podium.tasks import get_task


def _index(counts: dict[str, int], groups_of: dict[str, int] | None = None) -> pd.DataFrame:
    """A train index with `counts[label]` images per class (each its own group unless groups_of says)."""
    rows = []
    for label, count in counts.items():
        for k in range(count):
            group = f"{label}-g{k % groups_of[label]}" if groups_of and label in groups_of else f"{label}{k:03d}"
            rows.append({"id": f"{label}{k:03d}", "split": "train", "ok": True, "label": label, "group": group})
    return pd.DataFrame(rows)


def _train_labels(split: pd.DataFrame, index: pd.DataFrame, validation_fold: int) -> set[str]:
    merged = split.merge(index, on="id")
    return set(merged.loc[merged["fold"] != validation_fold, "label"])


# ---- a class too small to split -------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_holdout_keeps_a_single_image_class_in_training_and_says_so(seed):
    index = _index({"a": 30, "b": 30, "lonely": 1})
    split = make_holdout(index, 0.2, seed=seed)
    assert split.loc[split["id"] == "lonely000", "fold"].item() == 1  # training, in every seed
    assert _train_labels(split, index, 0) == {"a", "b", "lonely"}
    notes = split_notes(split)
    assert any("'lonely'" in n and "single image" in n and "training" in n for n in notes)
    # the other classes are still stratified: both sit in validation
    assert set(split.merge(index, on="id").query("fold == 0")["label"]) == {"a", "b"}


def test_holdout_a_class_of_one_duplicate_group_counts_as_one_image():
    index = _index({"a": 30, "b": 30, "copies": 4}, groups_of={"copies": 1})
    split = make_holdout(index, 0.5, seed=0)
    merged = split.merge(index, on="id")
    assert (merged.loc[merged["label"] == "copies", "fold"] == 1).all()
    assert any("'copies'" in n for n in split_notes(split))


def test_holdout_too_small_to_stratify_says_it_is_not_stratified():
    index = _index({c: 2 for c in "abcdef"})  # 12 images, 6 classes: 20% validation cannot hold one of each
    split = make_holdout(index, 0.2, seed=0)
    assert any("not stratified" in n for n in split_notes(split))
    assert _train_labels(split, index, 0) == set("abcdef")  # still: every class trains


def test_holdout_with_nothing_splittable_is_refused_with_a_fix():
    with pytest.raises(PodiumError, match="Too few independent images") as err:
        make_holdout(_index({"a": 1, "b": 1, "c": 1}), 0.2, seed=0)
    assert "Fix:" in str(err.value)


@pytest.mark.parametrize("seed", range(5))
def test_kfold_trains_every_class_in_every_fold_and_notes_small_ones(seed):
    index = _index({"a": 40, "b": 40, "rare": 3, "lonely": 1})
    split = make_kfold(index, 5, seed=seed)
    assert split.loc[split["id"] == "lonely000", "fold"].item() == TRAIN_ONLY
    for fold in range(5):
        assert _train_labels(split, index, fold) == {"a", "b", "rare", "lonely"}
    notes = " | ".join(split_notes(split))
    assert "'lonely'" in notes and "never validated" in notes
    assert "'rare'" in notes and "fewer than n_folds=5" in notes and "3 of 5 folds" in notes


def test_kfold_with_fewer_groups_than_folds_is_refused_not_a_traceback():
    index = _index({"a": 2, "b": 2})
    with pytest.raises(PodiumError, match="n_folds") as err:
        make_kfold(index, 5, seed=0)
    assert "Fix:" in str(err.value)


def test_notes_are_saved_with_the_split_and_come_back_on_reuse(tmp_path):
    index = _index({"a": 30, "b": 30, "lonely": 1})
    first, path = load_or_make_split(index, tmp_path, 5, 0.2, 42)
    again, _ = load_or_make_split(index, tmp_path, 5, 0.2, 42)
    assert split_notes(first) and split_notes(again) == split_notes(first)
    assert path.with_suffix(".json").is_file()


# ---- labels changed under a saved split ------------------------------------------------------------
def test_changed_labels_refuse_the_saved_split_until_rebuilt(tmp_path):
    index = _index({"a": 30, "b": 30})
    load_or_make_split(index, tmp_path, 5, 0.0, 42)
    relabeled = index.copy()
    relabeled.loc[relabeled["id"] == "a000", "label"] = "b"  # same ids, one label changed
    with pytest.raises(PodiumError, match="make folds FORCE=1") as err:
        load_or_make_split(relabeled, tmp_path, 5, 0.0, 42)
    assert "make train FORCE=1" in str(err.value)
    regrouped = index.copy()
    regrouped.loc[regrouped["id"].isin(["a000", "a001"]), "group"] = "dup"  # `make dups` found a copy
    with pytest.raises(PodiumError, match="make folds FORCE=1"):
        load_or_make_split(regrouped, tmp_path, 5, 0.0, 42)
    load_or_make_split(relabeled, tmp_path, 5, 0.0, 42, force=True)
    load_or_make_split(relabeled, tmp_path, 5, 0.0, 42)  # rebuilt: reused from now on


def test_a_split_without_a_record_is_adopted_and_says_so(tmp_path):
    """A hand-made split (the audit supports them) has no sidecar: adopted once, visibly, then guarded."""
    index = _index({"a": 30, "b": 30})
    _, path = load_or_make_split(index, tmp_path, 5, 0.0, 42)
    path.with_suffix(".json").unlink()
    adopted, _ = load_or_make_split(index, tmp_path, 5, 0.0, 42)
    assert any("adopted" in n for n in split_notes(adopted))
    relabeled = index.copy()
    relabeled.loc[0, "label"] = "b"
    with pytest.raises(PodiumError, match="FORCE=1"):
        load_or_make_split(relabeled, tmp_path, 5, 0.0, 42)


# ---- the whole path through the CLI on real JPEGs ----------------------------------------------------
def _competition(tmp_path, labels: dict[int, str]):
    """A labels-CSV competition of real demo JPEGs: image i labelled labels[i]. Relabelling rewrites only
    train.csv, so ids and files stay (a folder layout would move the file and change its id)."""
    from tests_support import real_demo_jpegs

    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    jpegs = real_demo_jpegs(len(labels) + 2)
    with zipfile.ZipFile(source / "train.zip", "w") as zf:
        for i in labels:
            zf.writestr(f"train/img{i:02d}.jpg", jpegs[i])
    with zipfile.ZipFile(source / "test.zip", "w") as zf:
        for k in range(2):
            zf.writestr(f"test/t{k}.jpg", jpegs[len(labels) + k])
    pd.DataFrame({"id": [f"img{i:02d}" for i in labels], "label": list(labels.values())}).to_csv(
        source / "train.csv", index=False)
    (source / "sample_submission.csv").write_text("id,label\nt0,a\nt1,a\n")
    spec = tmp_path / "mini.yaml"
    spec.write_text("slug: mini\nlayout: csv\narchives: [train.zip, test.zip, train.csv]\nlabels_csv: train.csv\n")
    return spec, source


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_folds_prints_what_happened_to_a_single_image_class(capsys, tmp_path):
    labels = {i: "ab"[i % 2] for i in range(20)}
    labels[20] = "lonely"
    spec, source = _competition(tmp_path, labels)
    assert _cli(capsys, "data", "--competition", spec, "--source", source, "--data-dir", tmp_path / "data")[0] == 0
    code, out, err = _cli(capsys, "folds", f"competition={spec}", f"data_dir={tmp_path / 'data'}", "val_split=0.25")
    assert code == 0, err
    assert "folds: note: class 'lonely' has a single image" in out and "training" in out
    split = pd.read_csv(tmp_path / "data" / "mini" / "splits" / "holdout-0.25-s42.csv")
    assert split.loc[split["id"] == "img20", "fold"].item() == 1


@pytest.mark.slow
def test_changed_labels_refuse_folds_train_and_predict_until_rebuilt_and_retrained(capsys, tmp_path):
    """make data FORCE=1 with new labels once reused the old split, reported the old CV, and predicted with
    models of the old labels. Now each stage refuses and names the step that fixes it."""
    labels = {i: "abc"[i % 3] for i in range(24)}
    spec, source = _competition(tmp_path, labels)
    data = ["--competition", spec, "--source", source, "--data-dir", tmp_path / "data"]
    common = [f"competition={spec}", f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
              f"submissions_dir={tmp_path / 'subs'}", "n_folds=2", "folds=[0,1]", "epochs=1", "image_size=32",
              "batch_size=8", "verbose=0"]
    assert _cli(capsys, "data", *data)[0] == 0
    assert _cli(capsys, "folds", *common)[0] == 0
    assert _cli(capsys, "train", *common)[0] == 0
    assert _cli(capsys, "predict", *common)[0] == 0

    labels.update({0: "b", 1: "c", 2: "a"})  # three images relabeled; same files, same ids
    _competition(tmp_path, labels)
    assert _cli(capsys, "data", *data, "--force")[0] == 0
    code, _, err = _cli(capsys, "folds", *common)  # a split kept from before is refused; one rebuilt is new
    if code:
        assert code == 2 and "make folds FORCE=1" in err and "Traceback" not in err
        assert _cli(capsys, "folds", *common, "--force")[0] == 0
    for verb in ("train", "predict"):  # the run's models learned the old labels
        code, _, err = _cli(capsys, verb, *common)
        assert code == 2 and "trained on other data" in err and "labels" in err, (verb, err)
        assert "make train FORCE=1" in err and "Traceback" not in err
    assert _cli(capsys, "train", *common, "folds=[0]", "--force")[0] == 0  # one fold retrained...
    code, _, err = _cli(capsys, "predict", *common)  # ...the other still learned the old labels
    assert code == 2 and "fold(s) [1]" in err and "make train FORCE=1" in err
    assert _cli(capsys, "train", *common, "--force")[0] == 0
    code, out, err = _cli(capsys, "predict", *common)
    assert code == 0, err
    import json

    record = json.loads((tmp_path / "runs").glob("*/data.json").__next__().read_text())
    sidecar = json.loads(next((tmp_path / "subs" / "mini").glob("*.json")).read_text())
    assert sidecar["data"]["index_fingerprint"] == record["index_fingerprint"]


@pytest.mark.slow
def test_a_fold_reused_by_the_search_with_other_labels_is_refused(tiny, tmp_path):
    """The search calls train_and_evaluate directly (no run-level data.json): each fold records the data it
    learned (fold-<k>/data.json), so a finished fold is never silently reused for other labels."""
    import dataclasses

    from podium.data.dataset import load_labeled_data
    from podium.runners.train import train_and_evaluate

    cfg = tiny.cfg(tmp_path)
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    first = train_and_evaluate(cfg, get_task(cfg.task), 0, data=data)
    assert train_and_evaluate(cfg, get_task(cfg.task), 0, data=data).val_score == first.val_score  # same data: reused
    relabeled = dataclasses.replace(data, labels=(data.labels + 1) % data.num_classes)
    with pytest.raises(PodiumError, match="trained on other data") as err:
        train_and_evaluate(cfg, get_task(cfg.task), 0, data=relabeled)
    assert "FORCE=1" in str(err.value)
    train_and_evaluate(cfg, get_task(cfg.task), 0, data=relabeled, force=True)  # the named fix works
    train_and_evaluate(cfg, get_task(cfg.task), 0, data=relabeled)
