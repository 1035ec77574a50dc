"""Folds by group (issue 20, section 6): the spec's group_column keeps a patient's images in one fold,
merged with the near-duplicate groups; the sidecar records the column; the audit catches a split group.

The competition is built from the embedded demo's real images: a flat train folder, a labels CSV with a
generated `patient` column (1 to 6 images per patient, mostly one label each) and a `scanner` column.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from podium.data.audit import LeakError, audit_split, read_split
from podium.data.competitions import load_competition
from podium.data.folds import load_or_make_split, make_holdout, make_kfold, read_split_record
from podium.data.groups import GROUP_KEY, attach_group_keys, split_groups
from podium.data.index import build_index, load_index, save_index
from podium.errors import PodiumError
from podium.io import write_csv
from podium.tasks import get_task

CLASSIFICATION = get_task("classification")
CLASSES = ["airplane", "cat", "ship"]
PER_CLASS = 80


def grouped_comp(demo_root: Path, root: Path) -> pd.DataFrame:
    """Demo images of three classes in one flat folder, a train.csv with patient and scanner columns."""
    rng = np.random.default_rng(7)
    rows, patient = [], 0
    for label in CLASSES:
        sources = sorted((demo_root / "train" / label).glob("*.jpg"))[:PER_CLASS]
        position = 0
        while position < len(sources):
            size = int(rng.integers(1, 7))
            for source in sources[position:position + size]:
                name = f"{label}_{source.name}"
                (root / "train").mkdir(parents=True, exist_ok=True)
                shutil.copy(source, root / "train" / name)
                rows.append({"image": Path(name).stem, "diagnosis": label, "patient": f"P{patient:03d}",
                             "scanner": f"S{patient % 4}"})
            position += size
            patient += 1
    labels = pd.DataFrame(rows)
    mixed = labels.index[labels["patient"] == labels["patient"].iloc[0]]  # one patient with two labels
    if len(mixed) > 1:
        labels.loc[mixed[-1], "diagnosis"] = CLASSES[1]
    labels.to_csv(root / "train.csv", index=False)
    (root / "test").mkdir()
    for n in range(1, 4):
        shutil.copy(demo_root / "test" / f"{n}.jpg", root / "test" / f"{n}.jpg")
    return labels


def spec_file(folder: Path, **fields):
    path = folder / "spec.yaml"
    base = dict(slug="grouped", layout="csv", labels_csv="train.csv", id_column="image", label_column="diagnosis",
                group_column="patient")
    path.write_text(yaml.safe_dump({**base, **fields}))
    return load_competition(str(path))


@pytest.fixture(scope="module")
def grouped(demo_root, tmp_path_factory):
    """(data_root, labels CSV rows, index built with group_column: patient)."""
    root = tmp_path_factory.mktemp("grouped")
    labels = grouped_comp(demo_root, root)
    index = build_index(spec_file(root), root, CLASSIFICATION)
    return root, labels, index


def _patients(split: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    return split.merge(labels, left_on="id", right_on="image")


def test_the_index_carries_each_images_group_key(grouped):
    root, labels, index = grouped
    train = index[index["split"] == "train"].set_index("id")
    assert len(train) == len(labels) == 3 * PER_CLASS
    for row in labels.itertuples():
        assert train.loc[row.image, GROUP_KEY] == f"patient={row.patient}"
    assert (index.loc[index["split"] == "test", GROUP_KEY] == "").all()
    assert labels.groupby("patient").size().max() > 1  # several images per patient: the test means something


@pytest.mark.parametrize("make", [lambda i: make_kfold(i, 5, seed=3), lambda i: make_holdout(i, 0.25, seed=3)])
def test_a_grouped_split_keeps_every_patient_in_one_fold(grouped, make):
    _, labels, index = grouped
    split = make(index)
    per_patient = _patients(split, labels).groupby("patient")["fold"].nunique()
    assert per_patient.max() == 1 and len(per_patient) == labels["patient"].nunique()
    # the same split without the column separates patients: the column is what kept them together
    plain = make(index.assign(**{GROUP_KEY: ""}))
    assert _patients(plain, labels).groupby("patient")["fold"].nunique().max() > 1


def test_grouped_kfold_is_deterministic_and_still_stratified(grouped):
    _, labels, index = grouped
    a = make_kfold(index, 5, seed=3)
    pd.testing.assert_frame_equal(a, make_kfold(index.sample(frac=1, random_state=1), 5, seed=3))
    assert not make_kfold(index, 5, seed=4)["fold"].equals(a["fold"])
    shares = _patients(a, labels).groupby("fold")["diagnosis"].value_counts(normalize=True).unstack()
    assert (shares.max() - shares.min()).max() < 0.15  # each fold holds about a third of each class
    sizes = a["fold"].value_counts()
    assert sizes.min() > 0.7 * len(a) / 5


def test_near_duplicates_and_patients_are_merged(grouped, tmp_path):
    """A byte copy of patient A's image filed under patient B joins A and B into one group."""
    root, labels, _ = grouped
    copy = tmp_path / "merged"
    shutil.copytree(root, copy)
    first, other = labels["patient"].iloc[0], labels["patient"].iloc[-1]
    source = labels[labels["patient"] == first]["image"].iloc[0]
    shutil.copy(copy / "train" / f"{source}.jpg", copy / "train" / "copy_of_a.jpg")
    rows = pd.concat([labels, pd.DataFrame([{"image": "copy_of_a", "diagnosis": CLASSES[2], "patient": other,
                                             "scanner": "S0"}])], ignore_index=True)
    rows.to_csv(copy / "train.csv", index=False)
    index = build_index(spec_file(copy), copy, CLASSIFICATION)
    train = index[index["split"] == "train"].sort_values("id").reset_index(drop=True)
    merged = split_groups(train)
    members = set(train.loc[merged == merged[train["id"] == "copy_of_a"].iloc[0], "id"])
    assert members == set(rows.loc[rows["patient"].isin([first, other]), "image"])
    for split in (make_kfold(index, 5, seed=0), make_holdout(index, 0.3, seed=0)):
        assert split[split["id"].isin(members)]["fold"].nunique() == 1


def test_sidecar_records_the_column_and_a_changed_column_or_value_is_stale(grouped, tmp_path):
    root, labels, index = grouped
    data_root = tmp_path / "data"
    split, path = load_or_make_split(index, data_root, 5, 0.0, 42, group_column="patient")
    record = read_split_record(path)
    assert record["group_column"] == "patient" and len(record["group_fingerprint"]) == 16
    again, _ = load_or_make_split(index, data_root, 5, 0.0, 42, group_column="patient")
    pd.testing.assert_frame_equal(split, again)

    # the spec now names another column: an index still holding patient keys is refused ...
    with pytest.raises(PodiumError, match="make data"):
        load_or_make_split(index, data_root, 5, 0.0, 42, group_column="scanner")
    # ... and once `make data` reread the groups, the split made with `patient` is stale
    by_scanner = attach_group_keys(index, spec_file(tmp_path, group_column="scanner"), root)
    with pytest.raises(PodiumError, match="group_column 'patient'.*FORCE=1|FORCE=1.*patient"):
        load_or_make_split(by_scanner, data_root, 5, 0.0, 42, group_column="scanner")
    # no group column any more: stale too
    with pytest.raises(PodiumError, match="group_column"):
        load_or_make_split(index.assign(**{GROUP_KEY: ""}), data_root, 5, 0.0, 42, group_column="")

    # same column, one patient's value changed in the CSV: stale, with the fix
    edited = tmp_path / "edited"
    edited.mkdir()
    changed = labels.copy()
    changed.loc[0, "patient"] = "P999"
    changed.to_csv(edited / "train.csv", index=False)
    moved = attach_group_keys(index, spec_file(tmp_path), edited)
    with pytest.raises(PodiumError, match="other values.*") as caught:
        load_or_make_split(moved, data_root, 5, 0.0, 42, group_column="patient")
    assert "make folds FORCE=1" in str(caught.value)
    rebuilt, _ = load_or_make_split(moved, data_root, 5, 0.0, 42, group_column="patient", force=True)
    assert read_split_record(path)["group_fingerprint"] != record["group_fingerprint"]
    assert set(rebuilt["id"]) == set(split["id"])


def test_a_split_without_groups_keeps_its_fingerprints(tmp_path):
    """An index without group keys splits and fingerprints as before the column existed: saved splits of
    older podiums stay valid (their sidecars record no group_column)."""
    ids = [f"img{i:03d}" for i in range(60)]
    index = pd.DataFrame({"id": ids, "split": "train", "ok": True, "label": [f"c{i % 3}" for i in range(60)],
                          "group": ids})
    keyed = index.assign(**{GROUP_KEY: ""})
    pd.testing.assert_frame_equal(make_kfold(index, 5, seed=1), make_kfold(keyed, 5, seed=1))
    _, path = load_or_make_split(index, tmp_path, 5, 0.0, 1)
    record = json.loads(path.with_suffix(".json").read_text())
    del record["group_column"], record["group_fingerprint"]  # as an older podium wrote it
    path.with_suffix(".json").write_text(json.dumps(record))
    load_or_make_split(keyed, tmp_path, 5, 0.0, 1, group_column="")  # still valid


def test_an_older_index_without_group_keys_loads_with_none(grouped, tmp_path):
    _, _, index = grouped
    save_index(index.drop(columns=GROUP_KEY), tmp_path / "index.parquet")
    loaded = load_index(tmp_path / "index.parquet")
    assert (loaded[GROUP_KEY] == "").all() and list(loaded.columns) == list(index.columns)


def test_audit_catches_a_hand_edited_split_that_splits_a_patient(grouped, tmp_path):
    root, labels, index = grouped
    data_root = tmp_path / "audited"
    shutil.copytree(root, data_root)
    split = make_kfold(index, 5, seed=0)
    clean = write_csv(tmp_path / "clean.csv", split)
    report = audit_split(index, read_split(clean), data_root, clean, threshold=8)
    assert report.group_column == "patient" and report.groups == labels["patient"].nunique()

    sizes = labels.groupby("patient").size()
    patient = sizes[sizes >= 3].index[0]
    moved_id = labels.loc[labels["patient"] == patient, "image"].iloc[1]
    by_id = split.set_index("id")
    by_id.loc[moved_id, "fold"] = (by_id.loc[moved_id, "fold"] + 1) % 5  # by hand, one image of one patient
    hand = write_csv(tmp_path / "hand.csv", by_id.reset_index())
    with pytest.raises(LeakError, match="LEAK") as caught:
        audit_split(index, read_split(hand), data_root, hand, threshold=8, out_dir=tmp_path / "audit")
    leak = caught.value
    assert leak.split_groups["group_key"].tolist() == [f"patient={patient}"]
    assert moved_id in set(leak.leaks["id_a"]) | set(leak.leaks["id_b"]) and len(leak.leaks) == 1
    assert f"patient={patient}" in str(leak) and "make folds FORCE=1" in str(leak)
    assert leak.gallery.is_file() and len(pd.read_csv(leak.table)) == 1


def test_a_group_column_missing_from_the_csv_stops_make_data(grouped, tmp_path):
    root, _, _ = grouped
    spec = spec_file(tmp_path, group_column="lesion_id")
    with pytest.raises(PodiumError, match="no group column 'lesion_id'") as caught:
        build_index(spec, root, CLASSIFICATION)
    assert "patient" in str(caught.value) and "group_column" in str(caught.value)


def test_a_group_column_empty_everywhere_or_missing_rows_are_errors_at_make_data(grouped, tmp_path):
    root, labels, index = grouped
    edited = tmp_path / "edited"
    edited.mkdir()
    labels.assign(patient="").to_csv(edited / "train.csv", index=False)
    with pytest.raises(PodiumError, match="empty for every train image"):
        attach_group_keys(index, spec_file(tmp_path), edited)
    labels.iloc[5:].to_csv(edited / "train.csv", index=False)
    with pytest.raises(PodiumError, match="5 train images have no row"):
        attach_group_keys(index, spec_file(tmp_path), edited)
    conflicting = pd.concat([labels, labels.iloc[[0]].assign(patient="P998")])
    conflicting.to_csv(edited / "train.csv", index=False)
    with pytest.raises(PodiumError, match="two different values"):
        attach_group_keys(index, spec_file(tmp_path), edited)


@pytest.mark.parametrize("fields, match", [
    (dict(layout="folder", labels_csv=""), "without a labels CSV"),
    (dict(group_column="diagnosis"), "equal to its label_column"),
    (dict(group_column="image"), "equal to its id_column"),
])
def test_a_group_column_the_spec_cannot_use_is_refused_at_load(tmp_path, fields, match):
    with pytest.raises(PodiumError, match=match):
        spec_file(tmp_path, **fields)


def test_make_data_reads_the_groups_and_rereads_them_when_the_spec_changes(grouped, tmp_path):
    """`make data` (prepare_data) on a folder of downloaded files: the index holds the spec's groups; a
    changed group_column is read again by the next `make data`, without unpacking again."""
    from tests_support import make_data

    source, labels, _ = grouped
    spec = tmp_path / "spec.yaml"
    fields = dict(slug="grouped", layout="csv", labels_csv="train.csv", id_column="image",
                  label_column="diagnosis", archives=["train.csv"], group_column="patient")
    spec.write_text(yaml.safe_dump(fields))
    data_dir = tmp_path / "data"
    make_data(str(spec), str(data_dir), source_dir=str(source))
    index = load_index(data_dir / "grouped" / "index.parquet")
    assert set(index.loc[index["split"] == "train", GROUP_KEY]) == {f"patient={p}" for p in labels["patient"]}
    spec.write_text(yaml.safe_dump({**fields, "group_column": "scanner"}))
    summary = make_data(str(spec), str(data_dir))
    assert not summary.extracted
    index = load_index(data_dir / "grouped" / "index.parquet")
    assert set(index.loc[index["split"] == "train", GROUP_KEY]) == {f"scanner={s}" for s in labels["scanner"]}
    spec.write_text(yaml.safe_dump({**fields, "group_column": "lesion"}))
    with pytest.raises(PodiumError, match="no group column 'lesion'"):
        make_data(str(spec), str(data_dir))


def test_cli_folds_then_audit_on_a_grouped_competition(grouped, tmp_path, capsys):
    """`make folds` keeps patients whole and `make audit` says so; a split edited by hand fails the audit
    (exit 2, the patient named) and a changed group_column makes `make folds` refuse the saved split."""
    from podium.cli.main import main
    from tests_support import make_data

    source, labels, _ = grouped
    spec = tmp_path / "spec.yaml"
    fields = dict(slug="grouped", layout="csv", labels_csv="train.csv", id_column="image",
                  label_column="diagnosis", archives=["train.csv"], group_column="patient")
    spec.write_text(yaml.safe_dump(fields))
    data_dir = tmp_path / "data"
    make_data(str(spec), str(data_dir), source_dir=str(source))
    common = [f"competition={spec}", f"data_dir={data_dir}", "n_folds=5", "split_seed=42"]
    assert main(["folds", *common]) == 0
    path = data_dir / "grouped" / "splits" / "folds-k5-s42.csv"
    assert read_split_record(path)["group_column"] == "patient"
    assert main(["audit", *common]) == 0
    out = capsys.readouterr().out
    assert f"{labels['patient'].nunique()} groups of patient, each within one fold" in out

    split = pd.read_csv(path, dtype={"id": str})
    sizes = labels.groupby("patient").size()
    moved = labels.loc[labels["patient"] == sizes[sizes >= 2].index[0], "image"].iloc[0]
    split.loc[split["id"] == moved, "fold"] = (split.loc[split["id"] == moved, "fold"] + 1) % 5
    write_csv(path, split)
    assert main(["audit", *common]) == 2
    assert "group(s) of the group column across folds" in capsys.readouterr().err

    spec.write_text(yaml.safe_dump({**fields, "group_column": "scanner"}))
    make_data(str(spec), str(data_dir))
    assert main(["folds", *common]) == 2
    err = capsys.readouterr().err
    assert "group_column 'patient'" in err and "make folds FORCE=1" in err
