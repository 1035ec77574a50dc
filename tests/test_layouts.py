"""Layouts `pixels` (images as CSV pixel columns: Digit Recognizer, Fashion-/Kannada-MNIST) and `filename`
(the label in each train file's name: Dogs vs. Cats), built from the embedded demo's CIFAR-10 JPEGs, through
make spec, make data, dups, EDA, the cache, folds, a tiny train, predict and the inference kernel."""

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from podium.tasks import get_task
from podium.data.cache import load_cached
from podium.data.competitions import load_competition
from podium.data.images import decode_image, read_image_bytes, resize_square
from podium.data.index import load_index
from podium.errors import PodiumError
from tests_support import make_data

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "src" / "podium" / "demo"
CLASSES = ("airplane", "cat", "ship")  # demo class folders; labels 0, 1, 2 in the pixel CSV


def _demo_images(per_class: int) -> dict[str, list[Image.Image]]:
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))
        return {c: [Image.open(io.BytesIO(zf.read(n))).convert("RGB")
                    for n in [n for n in names if n.split("/")[1] == c][:per_class]] for c in CLASSES}


def _pixels_of(image: Image.Image, rgb: bool) -> np.ndarray:
    return np.asarray(image if rgb else image.convert("L").resize((28, 28), Image.Resampling.BICUBIC), np.uint8)


def _write_pixel_source(folder: Path, per_class: int = 10, n_test: int = 9, rgb: bool = False,
                        spec_extra: str = "") -> dict:
    """A Digit-Recognizer-like folder: train.csv (label, pixel0..), test.csv (pixels only: ids are 1-based row
    numbers), sample_submission.csv (ImageId 1..N, Label), and a spec naming them."""
    images = _demo_images(per_class + n_test // len(CLASSES) + 1)
    train, labels, test = [], [], []
    for label, name in enumerate(CLASSES):
        train += [_pixels_of(i, rgb) for i in images[name][:per_class]]
        labels += [str(label)] * per_class
        test += [_pixels_of(i, rgb) for i in images[name][per_class:]]
    test = test[:n_test]
    count = train[0].size
    columns = [f"pixel{k}" for k in range(count)]
    folder.mkdir(parents=True)
    frame = pd.DataFrame(np.stack(train).reshape(len(train), -1), columns=columns)
    frame.insert(0, "label", labels)
    frame.to_csv(folder / "train.csv", index=False)
    pd.DataFrame(np.stack(test).reshape(len(test), -1), columns=columns).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"ImageId": range(1, len(test) + 1), "Label": 0}).to_csv(folder / "sample_submission.csv",
                                                                           index=False)
    spec = folder.parent / f"{folder.name}.yaml"
    spec.write_text(f"slug: {folder.name}\nlayout: pixels\narchives: [train.csv, test.csv, sample_submission.csv]\n"
                    "labels_csv: train.csv\ntest_csv: test.csv\nsubmission_id_column: ImageId\n"
                    "submission_label_column: Label\nflip_invariant: false\n" + spec_extra)
    return {"spec": spec, "train": np.stack(train), "labels": labels, "test": np.stack(test)}


@pytest.fixture
def digits(tmp_path) -> dict:
    made = _write_pixel_source(tmp_path / "digits-like")
    summary = make_data(str(made["spec"]), str(tmp_path / "data"), source_dir=str(tmp_path / "digits-like"))
    return {**made, "root": summary.root, "summary": summary, "index": load_index(summary.root / "index.parquet")}


# ---- layout pixels ----------------------------------------------------------------------------------------
def test_pixel_csv_rows_become_index_rows_naming_one_array_without_image_files(digits):
    index, root = digits["index"], digits["root"]
    train = index[index["split"] == "train"]
    test = index[index["split"] == "test"].sort_values("id", key=lambda ids: ids.astype(int))
    assert len(train) == 30 and len(test) == 9 and index["ok"].all()
    assert test["id"].tolist() == [str(k) for k in range(1, 10)]  # 1-based row numbers, as the sample's ImageId
    assert test["path"].tolist() == [f"pixels/test.npy#{k}" for k in range(9)]
    assert (index["width"] == 28).all() and (index["height"] == 28).all()
    assert sorted(p.name for p in root.rglob("*") if p.is_file() and p.suffix in (".png", ".jpg")) == []
    assert np.load(root / "pixels" / "train.npy").shape == (30, 28, 28)
    for row in train.sample(5, random_state=0).itertuples():  # each row decodes to its CSV pixels, label kept
        position = int(row.path.rpartition("#")[2])
        image = decode_image(root / row.path)
        assert image.shape == (28, 28, 3) and (image[:, :, 0] == digits["train"][position]).all()
        assert (image[:, :, 1] == image[:, :, 0]).all() and row.label == digits["labels"][position]
    assert digits["summary"].label_counts == {"0": 10, "1": 10, "2": 10}


def test_rgb_pixel_csv_with_image_shape_keeps_its_colours(tmp_path):
    made = _write_pixel_source(tmp_path / "rgb-like", per_class=3, n_test=3, rgb=True,
                               spec_extra="image_shape: [32, 32, 3]\n")
    summary = make_data(str(made["spec"]), str(tmp_path / "data"), source_dir=str(tmp_path / "rgb-like"))
    index = load_index(summary.root / "index.parquet")
    row = index[index["path"] == "pixels/train.npy#4"].iloc[0]
    assert (decode_image(summary.root / row.path) == made["train"][4]).all()
    assert (row.width, row.height) == (32, 32)


def test_the_cache_of_pixel_rows_holds_the_resized_csv_pixels(digits, tmp_path):
    rows = digits["index"][digits["index"]["split"] == "train"].reset_index(drop=True)
    cached = load_cached(rows, digits["root"], 32, tmp_path / "cache", progress=False)
    positions = rows["path"].str.rpartition("#")[2].astype(int)
    expected = np.stack([resize_square(np.repeat(digits["train"][p][:, :, None], 3, axis=2), 32) for p in positions])
    assert cached.shape == (30, 32, 32, 3) and (np.asarray(cached) == expected).all()


def _pixel_error(tmp_path, frame: pd.DataFrame, extra: str = "") -> str:
    folder = tmp_path / "bad"
    folder.mkdir()
    frame.to_csv(folder / "train.csv", index=False)
    frame.drop(columns=[c for c in frame.columns if not c.startswith("pixel")]).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"ImageId": [1], "Label": [0]}).to_csv(folder / "sample_submission.csv", index=False)
    spec = tmp_path / "bad.yaml"
    spec.write_text("slug: bad\nlayout: pixels\narchives: [train.csv, test.csv]\nlabels_csv: train.csv\n" + extra)
    with pytest.raises(PodiumError) as caught:
        make_data(str(spec), str(tmp_path / "data"), source_dir=str(folder))
    return str(caught.value)


def _pixels(count: int, rows: int = 2) -> pd.DataFrame:
    frame = pd.DataFrame(np.zeros((rows, count), int), columns=[f"pixel{k}" for k in range(count)])
    frame.insert(0, "label", ["a", "b"][:rows])
    return frame


def test_a_pixel_count_that_is_not_a_square_without_image_shape_is_refused_naming_it(tmp_path):
    message = _pixel_error(tmp_path, _pixels(700))
    assert "700 pixel columns, which is not a square number" in message and "image_shape" in message


def test_an_image_shape_that_does_not_fit_the_pixel_columns_is_refused(tmp_path):
    message = _pixel_error(tmp_path, _pixels(784), "image_shape: [28, 27]\n")
    assert "[28, 27] does not fit the 784 pixel columns" in message and "[28, 28] (gray)" in message


def test_a_pixel_csv_without_its_label_column_is_refused(tmp_path):
    message = _pixel_error(tmp_path, _pixels(16).rename(columns={"label": "digit"}))
    assert "no label column 'label'" in message and "label_column" in message


def test_a_pixel_value_outside_0_255_is_refused_naming_the_cell(tmp_path):
    frame = _pixels(16)
    frame.loc[1, "pixel3"] = 300
    message = _pixel_error(tmp_path, frame)
    assert "outside 0..255" in message and "'pixel3' on CSV row 2" in message


def test_spec_fields_of_the_layouts_are_checked_at_load(tmp_path):
    cases = {"layout: pixels\nimage_shape: [28, 28, 2]\n": "invalid image_shape",
             "image_shape: [28, 28]\n": "image_shape with layout: folder",
             "layout: filename\nlabel_pattern: '(a)(b)'\n": "2 groups",
             "layout: filename\nlabel_pattern: '(a'\n": "not a regular expression",
             "label_pattern: '(cat)'\n": "label_pattern with layout: folder"}
    for text, expected in cases.items():
        path = tmp_path / "spec.yaml"
        path.write_text("slug: x\n" + text)
        with pytest.raises(PodiumError, match=expected.replace("(", r"\(").replace("[", r"\[")):
            load_competition(str(path))
    path.write_text("slug: x\nlayout: pixels\nimage_shape: [32, 32, 3]\n")
    assert load_competition(str(path)).image_shape == (32, 32, 3)


def test_dups_and_eda_run_on_a_pixel_layout_and_find_a_copied_row(tmp_path):
    from podium.data.duplicates import run_dups
    from podium.data.eda import make_eda

    made = _write_pixel_source(tmp_path / "dup-like", per_class=6, n_test=3)
    test = pd.read_csv(tmp_path / "dup-like" / "test.csv")
    train = pd.read_csv(tmp_path / "dup-like" / "train.csv")
    brighter = np.clip(train.iloc[4, 1:].to_numpy() + 12, 0, 255)  # train row 5, a little brighter, into test
    pd.concat([test, pd.DataFrame([brighter], columns=test.columns)], ignore_index=True).to_csv(
        tmp_path / "dup-like" / "test.csv", index=False)
    pd.DataFrame({"ImageId": range(1, 5), "Label": 0}).to_csv(tmp_path / "dup-like" / "sample_submission.csv",
                                                               index=False)
    summary = make_data(str(made["spec"]), str(tmp_path / "data"), source_dir=str(tmp_path / "dup-like"))
    result = run_dups(summary.root)
    matches = pd.read_csv(result.train_test_path, dtype=str)
    assert result.test_with_train_copies == 1 and matches["test_id"].tolist() == ["4"]
    assert matches["train_id"].tolist() == ["5"]
    report = make_eda(load_index(summary.root / "index.parquet"), summary.root, tmp_path / "eda")
    assert report.summary["sizes"] and report.summary["unreadable"] == 0
    assert (tmp_path / "eda" / "samples.png").stat().st_size > 1000


def test_the_inference_kernel_converts_the_test_csv_into_its_scratch_not_the_read_only_input(digits, tmp_path):
    from podium import tasks
    from podium.config import load_config
    from podium.kaggle.inference import package_run, predict_from_package

    cfg = load_config(None, {"competition": str(digits["spec"]), "data_dir": str(tmp_path / "data"),
                             "runs_dir": str(tmp_path / "runs"), "backbone": "tiny_cnn", "image_size": 32,
                             "augment": [], "tta": ["identity"], "folds": [0], "verbose": 0})
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 3).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text("{}")
    package = package_run(cfg, get_task(cfg.task), tmp_path / "package", "tester/digits-run") / cfg.run_id
    competition = tmp_path / "digits-like"  # the files as Kaggle mounts them: read-only
    os.chmod(competition, stat.S_IRUSR | stat.S_IXUSR)
    try:
        out = tmp_path / "submission.csv"
        summary = predict_from_package(package, get_task(cfg.task), competition, out, tmp_path / "scratch",
                                       log=lambda line: None)
    finally:
        os.chmod(competition, stat.S_IRWXU)
    submission = pd.read_csv(out, dtype=str)
    assert summary.n_test == 9 and submission["ImageId"].tolist() == [str(k) for k in range(1, 10)]
    assert set(submission["Label"]) <= {"0", "1", "2"}
    assert np.load(tmp_path / "scratch" / "pixels" / "test.npy").shape == (9, 28, 28)
    assert not (competition / "pixels").exists()


@pytest.mark.slow
def test_digit_recognizer_like_csv_to_a_validated_submission(tmp_path, capsys):
    from podium.cli.main import main

    made = _write_pixel_source(tmp_path / "digits-like", per_class=12, n_test=9)
    config = tmp_path / "digits.yaml"
    config.write_text(f"name: digits\ncompetition: {made['spec']}\nbackbone: tiny_cnn\nimage_size: 32\nn_folds: 2\n"
                      "folds: [0]\nepochs: 1\nbatch_size: 8\naugment: []\ntta: [identity]\n")
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0"]
    assert main(["run", "--config", str(config), "--source", str(tmp_path / "digits-like"), *dirs]) == 0
    run_id = next((tmp_path / "runs").iterdir()).name
    submission = pd.read_csv(tmp_path / "submissions" / "digits-like" / f"{run_id}.csv", dtype=str)
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission["ImageId"].tolist() == [str(k) for k in range(1, 10)]
    assert set(submission["Label"]) <= {"0", "1", "2"}
    split = next((tmp_path / "data" / "digits-like" / "splits").glob("*.csv"))
    assert len(pd.read_csv(split)) == 36
    assert not list((tmp_path / "data" / "digits-like").rglob("*.png"))


# ---- layout filename --------------------------------------------------------------------------------------
def _write_filename_source(folder: Path, per_class: int = 8, stray: str = "") -> Path:
    """A Dogs-vs-Cats-like folder: train/<class>.<n>.jpg, test1/<n>.jpg, sample_submission.csv (id,label)."""
    images = _demo_images(per_class + 2)
    (folder / "train").mkdir(parents=True)
    (folder / "test1").mkdir()
    ids = []
    for name in CLASSES:
        for k, image in enumerate(images[name][:per_class]):
            image.save(folder / "train" / f"{name}.{k}.jpg", quality=95)
        for image in images[name][per_class:]:
            ids.append(str(len(ids) + 1))
            image.save(folder / "test1" / f"{ids[-1]}.jpg", quality=95)
    if stray:
        images["cat"][0].save(folder / "train" / stray)
    pd.DataFrame({"id": ids, "label": CLASSES[0]}).to_csv(folder / "sample_submission.csv", index=False)
    return folder


def _filename_spec(tmp_path: Path, extra: str = "") -> Path:
    spec = tmp_path / "pets-like.yaml"
    spec.write_text("slug: pets-like\nlayout: filename\narchives: [sample_submission.csv]\ntrain_dir: train\n"
                    "test_dir: test1\n" + extra)
    return spec


def test_labels_read_from_train_file_names(tmp_path):
    source = _write_filename_source(tmp_path / "pets")
    summary = make_data(str(_filename_spec(tmp_path)), str(tmp_path / "data"), source_dir=str(source))
    index = load_index(summary.root / "index.parquet")
    train = index[index["split"] == "train"]
    assert summary.label_counts == {"airplane": 8, "cat": 8, "ship": 8}
    assert (train["id"].str.partition(".")[0] == train["label"]).all()  # cat.3 -> cat
    assert train.loc[train["id"] == "ship.7", "path"].tolist() == ["train/ship.7.jpg"]
    assert summary.n_test == 6


def test_a_train_file_name_the_pattern_does_not_match_stops_make_data_naming_it(tmp_path):
    source = _write_filename_source(tmp_path / "pets", stray="README_picture.png")
    with pytest.raises(PodiumError, match=r"1 of 25 train file names .*README_picture\.png") as caught:
        make_data(str(_filename_spec(tmp_path)), str(tmp_path / "data"), source_dir=str(source))
    assert "label_pattern" in caught.value.fix


def test_a_label_pattern_reads_labels_before_a_separator(tmp_path):
    source = _write_filename_source(tmp_path / "pets")
    for path in (source / "train").iterdir():
        path.rename(path.with_name(path.name.replace(".", "_", 1)))  # cat_3.jpg
    summary = make_data(str(_filename_spec(tmp_path, "label_pattern: '([a-z]+)_'\n")), str(tmp_path / "data"),
                           source_dir=str(source))
    assert summary.label_counts == {"airplane": 8, "cat": 8, "ship": 8}


@pytest.mark.slow
def test_label_in_file_name_folder_trains_and_predicts(tmp_path):
    from podium.cli.main import main

    source = _write_filename_source(tmp_path / "pets", per_class=8)
    config = tmp_path / "pets.yaml"
    config.write_text(f"name: pets\ncompetition: {_filename_spec(tmp_path)}\nbackbone: tiny_cnn\nimage_size: 32\n"
                      "n_folds: 2\nfolds: [0]\nepochs: 1\nbatch_size: 8\naugment: [flip]\ntta: [identity, hflip]\n")
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0"]
    assert main(["run", "--config", str(config), "--source", str(source), *dirs]) == 0
    run_id = next((tmp_path / "runs").iterdir()).name
    submission = pd.read_csv(tmp_path / "submissions" / "pets-like" / f"{run_id}.csv", dtype=str)
    assert submission["id"].tolist() == [str(k) for k in range(1, 7)]
    assert set(submission["label"]) <= set(CLASSES)


# ---- make spec --------------------------------------------------------------------------------------------
def test_make_spec_recognises_pixel_csvs_and_its_draft_makes_the_same_index(tmp_path):
    from podium.spec import draft_spec, write_draft
    from tests_support import spec_check

    made = _write_pixel_source(tmp_path / "digit-recognizer", per_class=4, n_test=3)
    draft = draft_spec(tmp_path / "digit-recognizer")
    values = draft.values
    assert values["layout"] == "pixels" and values["image_shape"] == [28, 28]
    assert (values["labels_csv"], values["label_column"], values["test_csv"]) == ("train.csv", "label", "test.csv")
    assert (values["submission_id_column"], values["submission_label_column"]) == ("ImageId", "Label")
    assert "1-based row numbers" in draft.notes["id_column"] and "784 pixel columns = 28 x 28" in draft.notes[
        "image_shape"]
    assert "pixel<N> columns" in draft.notes["layout"]
    spec_path = write_draft(draft, tmp_path / "drafted.yaml")
    spec = load_competition(str(spec_path))
    check = spec_check(spec, tmp_path / "digit-recognizer")
    assert check.ok, check.problems
    assert (check.n_train, check.n_test, check.classes) == (12, 3, ["0", "1", "2"])
    summary = make_data(str(spec_path), str(tmp_path / "data"), source_dir=str(tmp_path / "digit-recognizer"))
    assert (summary.n_train, summary.n_test) == (12, 3)
    made["spec"].write_text(made["spec"].read_text() + "image_shape: [28, 28]\n")
    assert load_competition(str(made["spec"])).image_shape == spec.image_shape


def test_make_spec_recognises_labels_in_file_names(tmp_path):
    from podium.spec import draft_spec, write_draft
    from tests_support import spec_check

    source = _write_filename_source(tmp_path / "dogs-vs-cats", per_class=5)
    draft = draft_spec(source)
    assert draft.values["layout"] == "filename" and draft.values["train_dir"] == "train"
    assert draft.values["test_dir"] == "test1" and "label_pattern" not in draft.values
    assert "start with one of 3 labels (the text before the first dot)" in draft.notes["layout"]
    spec = load_competition(str(write_draft(draft, tmp_path / "drafted.yaml")))
    check = spec_check(spec, source)
    assert check.ok, check.problems
    assert check.classes == list(CLASSES) and check.n_train == 15

    for path in (source / "train").iterdir():
        path.rename(path.with_name(path.name.replace(".", "-", 1)))  # cat-3.jpg: before a separator
    draft = draft_spec(source)
    assert draft.values["layout"] == "filename" and draft.values["label_pattern"] == "([^._-]+)[_-]"
    assert spec_check(load_competition(str(write_draft(draft, tmp_path / "drafted.yaml", force=True))), source).ok


def test_pixel_rows_read_as_bytes_are_a_hash_of_their_pixels(digits):
    first = read_image_bytes(digits["root"] / "pixels" / "train.npy#0")
    assert first.startswith(b"P5\n28 28\n255\n") and first.endswith(digits["train"][0].tobytes())
    with pytest.raises(PodiumError, match="row 99 is beyond the 30 rows"):
        decode_image(digits["root"] / "pixels" / "train.npy#99")


def test_make_spec_cli_drafts_and_checks_a_pixel_competition(tmp_path, capsys):
    from podium.cli.main import main

    _write_pixel_source(tmp_path / "kannada-like", per_class=4, n_test=3)
    assert main(["spec", "--source", str(tmp_path / "kannada-like"), "--out", str(tmp_path / "k.yaml")]) == 0
    out = capsys.readouterr().out
    assert "images as pixel columns of train.csv (label label) and test.csv, image_shape [28, 28]" in out
    assert "`make data` would index 12 train images in 3 classes and 3 test images" in out


def test_rehearsal_refuses_a_pixel_competition_saying_why(tmp_path):
    from podium.config import load_config
    from podium.kaggle.rehearse import rehearse

    cfg = load_config(None, {"competition": "digit-recognizer", "data_dir": str(tmp_path / "data"), "augment": [],
                             "tta": ["identity"]})
    with pytest.raises(PodiumError, match="cannot rename the test images of a pixels layout"):
        rehearse(cfg, get_task(cfg.task), tmp_path)
