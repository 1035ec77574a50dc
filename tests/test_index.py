import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from podium.data.competitions import load_competition
from podium.data.index import COLUMNS, build_index, class_names, load_index, save_index
from podium.errors import PodiumError
from podium.tasks import get_task

CLASSIFICATION = get_task("classification")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def demo_index(demo_root):
    return build_index(load_competition("demo"), demo_root, CLASSIFICATION)


def write_spec(folder: Path, **fields) -> object:
    """A competition spec the way a user writes one: a YAML file, loaded by path."""
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({"slug": "mini", **fields}))
    return load_competition(str(path))


def small_folder_comp(demo_root: Path, root: Path, per_class: int = 3, tests: int = 4) -> Path:
    """A few demo images in the folder layout, for error cases that need their own files."""
    for label in CLASSES:
        (root / "train" / label).mkdir(parents=True)
        for source in sorted((demo_root / "train" / label).glob("*.jpg"))[:per_class]:
            shutil.copy(source, root / "train" / label / source.name)
    (root / "test").mkdir()
    for n in range(1, tests + 1):
        shutil.copy(demo_root / "test" / f"{n}.jpg", root / "test" / f"{n}.jpg")
    return root


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


# ---- the demo ---------------------------------------------------------------------------------------
def test_demo_index_shape_and_content(demo_index, demo_root):
    assert list(demo_index.columns) == COLUMNS
    train, test = demo_index[demo_index.split == "train"], demo_index[demo_index.split == "test"]
    assert len(train) == 2000 and len(test) == 500
    assert train.label.value_counts().to_dict() == {label: 200 for label in CLASSES}
    assert set(test.id) == {str(n) for n in range(1, 501)}
    assert (test.label == "").all()
    assert demo_index.ok.all() and (demo_index.error == "").all()
    assert (demo_index.width == 32).all() and (demo_index.height == 32).all()
    assert demo_index.id.is_unique


def test_demo_ids_paths_labels_hashes(demo_index, demo_root):
    row = demo_index[demo_index.id == "airplane/0001"].iloc[0]
    assert (row.split, row.path, row.label) == ("train", "train/airplane/0001.jpg", "airplane")
    assert row.hash == sha1(demo_root / row.path) and row.group == row.hash
    test_row = demo_index[(demo_index.split == "test") & (demo_index.id == "17")].iloc[0]
    assert test_row.path == "test/17.jpg"
    train = demo_index[demo_index.split == "train"]
    assert (train.id.str.split("/").str[0] == train.label).all()
    assert not demo_index.path.str.contains("\\\\", regex=False).any()


def test_rows_sorted_by_split_then_id(demo_index):
    keys = list(zip(demo_index.split, demo_index.id))
    assert keys == sorted(keys)
    assert demo_index.index.tolist() == list(range(len(demo_index)))


def test_dtypes(demo_index):
    for column in ("id", "split", "path", "label", "hash", "group", "error"):
        assert pd.api.types.is_string_dtype(demo_index[column]), column
    assert demo_index.width.dtype == "int64" and demo_index.height.dtype == "int64"
    assert demo_index.ok.dtype == bool


def test_build_is_deterministic(demo_index, demo_root, capsys):
    again = build_index(load_competition("demo"), demo_root, CLASSIFICATION, progress=True)
    pd.testing.assert_frame_equal(again, demo_index)


def test_save_and_load_round_trip(demo_index, tmp_path):
    path = save_index(demo_index, tmp_path / "data" / "index.parquet")
    pd.testing.assert_frame_equal(load_index(path), demo_index)
    assert [p.name for p in path.parent.iterdir()] == ["index.parquet"]  # no temp file left


def test_load_index_missing_says_make_data(tmp_path):
    with pytest.raises(PodiumError, match="make data"):
        load_index(tmp_path / "index.parquet")


def test_load_index_from_other_version(tmp_path):
    pd.DataFrame({"id": ["a"]}).to_parquet(tmp_path / "index.parquet")
    with pytest.raises(PodiumError, match="another podium version"):
        load_index(tmp_path / "index.parquet")


def test_class_names(demo_index, tmp_path):
    assert class_names(demo_index, load_competition("demo"), CLASSIFICATION) == CLASSES
    fixed = write_spec(tmp_path, classes=list(reversed(CLASSES)))
    assert class_names(demo_index, fixed, CLASSIFICATION) == list(reversed(CLASSES))
    unreadable = demo_index.copy()
    unreadable.loc[unreadable.label == "frog", "ok"] = False
    assert "frog" not in class_names(unreadable, load_competition("demo"), CLASSIFICATION)


# ---- broken files become rows, not crashes ----------------------------------------------------------
def test_corrupt_and_empty_files_are_marked_not_fatal(demo_root, tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    truncated = root / "train" / "cat" / sorted(p.name for p in (root / "train" / "cat").iterdir())[0]
    truncated.write_bytes(truncated.read_bytes()[:400])
    (root / "test" / "42.jpg").write_bytes(b"")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"junk")
    (root / "train" / "__MACOSX" / "cat").mkdir(parents=True)
    (root / "train" / "__MACOSX" / "cat" / "._0001.jpg").write_bytes(b"junk")
    (root / "train" / "dog" / "notes.txt").write_text("not an image extension")
    shutil.copy(sorted((root / "train" / "dog").glob("*.jpg"))[0], root / "train" / "dog" / "copy.JPG")

    index = build_index(load_competition("demo"), root, CLASSIFICATION)
    assert len(index) == 2501  # the copy counts; hidden, __MACOSX and .txt files do not
    bad = index[~index.ok].set_index("id")
    assert sorted(bad.index) == ["42", f"cat/{truncated.stem}"]
    assert "truncated" in bad.loc[f"cat/{truncated.stem}", "error"]
    assert "empty" in bad.loc["42", "error"]
    assert (bad.width == 0).all() and (bad.height == 0).all()
    assert (index[index.ok].error == "").all()
    copy = index[index.id == "dog/copy"].iloc[0]
    twins = index[index.hash == copy.hash]
    assert len(twins) == 2 and twins.group.nunique() == 1  # exact duplicates share a group


# ---- csv layout -------------------------------------------------------------------------------------
def csv_comp(demo_root: Path, root: Path, per_class: int = 5) -> tuple[Path, pd.DataFrame]:
    """Demo images renamed flat (<class>_<n>.jpg), spread over two sub-folders, with a labels CSV of
    class numbers; half the ids are file names, half stems, as Kaggle CSVs vary."""
    rows = []
    for k, label in enumerate(CLASSES):
        for j, source in enumerate(sorted((demo_root / "train" / label).glob("*.jpg"))[:per_class]):
            name = f"{label}_{source.name}"
            target = root / "train" / f"part{j % 2}" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
            rows.append({"Id": name if j % 2 else Path(name).stem, "Category": k, "source": source})
    (root / "test_upload").mkdir()
    for n in range(1, 6):
        shutil.copy(demo_root / "test" / f"{n}.jpg", root / "test_upload" / f"{n}.jpg")
    labels = pd.DataFrame(rows)
    labels[["Id", "Category"]].to_csv(root / "train.csv", index=False)
    return root, labels


CSV_SPEC = dict(layout="csv", labels_csv="train.csv", id_column="Id", label_column="Category",
                test_dir="test_upload", submission_id="filename")


def test_csv_layout(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars")
    spec = write_spec(tmp_path, **CSV_SPEC)
    index = build_index(spec, root, CLASSIFICATION)
    train = index[index.split == "train"].set_index("id")
    assert sorted(train.index) == sorted(labels.Id)
    for row in labels.itertuples():
        assert train.loc[row.Id, "label"] == str(row.Category)
        assert train.loc[row.Id, "hash"] == sha1(row.source)  # the right file was found
        assert train.loc[row.Id, "path"].startswith("train/part")
    test = index[index.split == "test"]
    assert sorted(test.id) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]
    assert class_names(index, spec, CLASSIFICATION) == [str(k) for k in range(10)]


def test_csv_ids_may_be_relative_paths(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=2)
    frame = pd.DataFrame({"Id": [p.relative_to(root / "train").as_posix() for p in (root / "train").rglob("*.jpg")],
                          "Category": "x"})
    frame.to_csv(root / "train.csv", index=False)
    index = build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    train = index[index.split == "train"]
    assert (("train/" + train.id) == train.path).all()


def test_csv_missing_files_are_named_and_counted(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=2)
    extra = pd.DataFrame({"Id": ["ghost_1.jpg", "ghost_2"], "Category": [0, 1]})
    pd.concat([labels[["Id", "Category"]], extra]).to_csv(root / "train.csv", index=False)
    with pytest.raises(PodiumError) as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    message = str(caught.value)
    assert "ghost_1.jpg" in message and "ghost_2" in message and "2 of 22 rows" in message


def test_csv_missing_file_list_is_truncated(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    ghosts = pd.DataFrame({"Id": [f"ghost_{n:02d}" for n in range(12)], "Category": 0})
    pd.concat([labels[["Id", "Category"]], ghosts]).to_csv(root / "train.csv", index=False)
    with pytest.raises(PodiumError, match="12 of 22 rows") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert "ghost_00" in str(caught.value) and "and 7 more" in str(caught.value)
    assert "ghost_11" not in str(caught.value)


def test_csv_labels_file_missing(demo_root, tmp_path):
    root, _ = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    (root / "train.csv").unlink()
    with pytest.raises(PodiumError, match="labels CSV") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert "train.csv" in str(caught.value) and "make data COMP=mini" in str(caught.value)


@pytest.mark.parametrize("column, role", [("Id", "id"), ("Category", "label")])
def test_csv_missing_column(demo_root, tmp_path, column, role):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    labels[["Id", "Category"]].rename(columns={column: "other"}).to_csv(root / "train.csv", index=False)
    with pytest.raises(PodiumError, match=f"no {role} column '{column}'") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert "other" in str(caught.value) and f"{role}_column" in str(caught.value)


def test_csv_duplicate_ids(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    pd.concat([labels, labels.iloc[[3]]])[["Id", "Category"]].to_csv(root / "train.csv", index=False)
    with pytest.raises(PodiumError, match="more than once") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert repr(str(labels.Id.iloc[3])) in str(caught.value)


def test_csv_ambiguous_name(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=2)
    name = labels.Id.iloc[1]  # a file name in part1
    shutil.copy(root / "train" / "part1" / name, root / "train" / "part0" / name)
    with pytest.raises(PodiumError, match="more than one file") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert name in str(caught.value)


def test_csv_empty_label(demo_root, tmp_path):
    root, labels = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    labels = labels[["Id", "Category"]].astype(str)
    labels.loc[2, "Category"] = ""
    labels.to_csv(root / "train.csv", index=False)
    with pytest.raises(PodiumError, match="no label") as caught:
        build_index(write_spec(tmp_path, **CSV_SPEC), root, CLASSIFICATION)
    assert labels.Id[2] in str(caught.value)


def test_csv_label_not_in_classes(demo_root, tmp_path):
    root, _ = csv_comp(demo_root, tmp_path / "cars", per_class=1)
    spec = write_spec(tmp_path, **CSV_SPEC, classes=[str(k) for k in range(9)])
    with pytest.raises(PodiumError, match="not among the classes") as caught:
        build_index(spec, root, CLASSIFICATION)
    assert "'9'" in str(caught.value)


# ---- folder layout bad input ------------------------------------------------------------------------
def test_missing_data_root_says_make_data(tmp_path):
    with pytest.raises(PodiumError, match=r"make data COMP=demo") as caught:
        build_index(load_competition("demo"), tmp_path / "nowhere", CLASSIFICATION)
    assert "nowhere" in str(caught.value)


def test_missing_train_dir(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(PodiumError, match="train folder") as caught:
        build_index(load_competition("demo"), tmp_path, CLASSIFICATION)
    assert "make data COMP=demo" in str(caught.value)


def test_missing_test_dir(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1)
    shutil.rmtree(root / "test")
    with pytest.raises(PodiumError, match="test folder"):
        build_index(load_competition("demo"), root, CLASSIFICATION)


def test_empty_class_folder_is_named(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1)
    (root / "train" / "zebra").mkdir()
    (root / "train" / "zebra" / "readme.txt").write_text("no images here")
    with pytest.raises(PodiumError, match="Class folder 'zebra'"):
        build_index(load_competition("demo"), root, CLASSIFICATION)


def test_no_images_at_all(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "labels.txt").write_text("nothing")
    (tmp_path / "test").mkdir()
    with pytest.raises(PodiumError, match="No images found") as caught:
        build_index(load_competition("demo"), tmp_path, CLASSIFICATION)
    assert "labels.txt" in str(caught.value)


def test_no_test_images(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1, tests=0)
    with pytest.raises(PodiumError, match="No images found"):
        build_index(load_competition("demo"), root, CLASSIFICATION)


def test_folder_duplicate_ids(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1)
    first = next((root / "train" / "cat").glob("*.jpg"))
    shutil.copy(first, first.with_suffix(".png"))  # same id: cat/<stem>
    with pytest.raises(PodiumError, match="more than once") as caught:
        build_index(load_competition("demo"), root, CLASSIFICATION)
    assert f"cat/{first.stem}" in str(caught.value)


def test_test_duplicate_ids_by_stem(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1)
    shutil.copy(root / "test" / "1.jpg", root / "test" / "1.png")
    with pytest.raises(PodiumError, match="test ids occur more than once"):
        build_index(load_competition("demo"), root, CLASSIFICATION)
    spec = write_spec(tmp_path, submission_id="filename")  # as file names they are distinct
    assert {"1.jpg", "1.png"} <= set(build_index(spec, root, CLASSIFICATION).id)


def test_folder_label_not_in_classes(demo_root, tmp_path):
    root = small_folder_comp(demo_root, tmp_path / "mini", per_class=1)
    spec = write_spec(tmp_path, classes=[c for c in CLASSES if c != "frog"])
    with pytest.raises(PodiumError, match="not among the classes") as caught:
        build_index(spec, root, CLASSIFICATION)
    assert "'frog'" in str(caught.value)
