"""`make spec`: a spec drafted from downloaded files must make `make data` index the same images, and the
check must name what is wrong with a spec that does not fit the files (with the fix)."""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from podium.cli.main import main
from podium.data.competitions import load_competition
from podium.spec import draft_spec, write_draft
from tests_support import spec_check
from podium.errors import PodiumError
from tests_support import make_data

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"


def _zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent).as_posix())


@pytest.fixture
def folder_source(tmp_path) -> Path:
    """The demo as Kaggle serves a folder-per-class competition: train.zip, test.zip, sample_submission.csv."""
    source = tmp_path / "cifar-like"
    source.mkdir()
    for name in ("train.zip", "test.zip", "sample_submission.csv"):
        shutil.copyfile(DEMO_DIR / name, source / name)
    return source


@pytest.fixture
def csv_source(demo_root, tmp_path) -> Path:
    """The demo's JPEGs in a labels-CSV layout: train images unpacked flat in train_images/ (named
    <class>_<n>.jpg), train_labels.csv (image file name, species, a constant column), the test images zipped
    as test_images.zip, and a sample submission whose ids carry the extension."""
    source = tmp_path / "pets-like"
    train = source / "train_images"
    train.mkdir(parents=True)
    rows = []
    for path in sorted((demo_root / "train").glob("*/*.jpg")):
        name = f"{path.parent.name}_{path.stem}.jpg"
        shutil.copyfile(path, train / name)
        rows.append({"image": name, "species": path.parent.name, "source": "web"})
    pd.DataFrame(rows).to_csv(source / "train_labels.csv", index=False)
    test = tmp_path / "staging" / "test_images"
    test.mkdir(parents=True)
    names = []
    for path in sorted((demo_root / "test").glob("*.jpg")):
        shutil.copyfile(path, test / path.name)
        names.append(path.name)
    _zip_folder(test, source / "test_images.zip")
    pd.DataFrame({"file_name": names, "species": "cat"}).to_csv(source / "sample_submission.csv", index=False)
    return source


def _draft_and_load(source: Path, out: Path):
    draft = draft_spec(source)
    write_draft(draft, out)
    return draft, load_competition(str(out))


def test_folder_layout_draft_makes_make_data_index_every_image(folder_source, tmp_path):
    draft, spec = _draft_and_load(folder_source, tmp_path / "spec.yaml")
    assert (spec.slug, spec.layout, spec.task) == ("cifar-like", "folder", "classification")
    assert (spec.train_dir, spec.test_dir, spec.submission_id) == ("train", "test", "stem")
    assert (spec.submission_id_column, spec.submission_label_column) == ("id", "label")
    assert sorted(spec.archives) == ["sample_submission.csv", "test.zip", "train.zip"]
    assert draft.images["width"] == draft.images["height"] == 32 and draft.images["channels"] == "colour"
    check = spec_check(spec, folder_source)
    assert check.ok, check.problems
    summary = make_data(str(tmp_path / "spec.yaml"), str(tmp_path / "data"), str(folder_source))
    assert (summary.n_train, summary.n_test, summary.n_classes) == (2000, 500, 10)
    assert (check.n_train, check.n_test, len(check.classes)) == (summary.n_train, summary.n_test, summary.n_classes)


def test_csv_layout_draft_finds_columns_and_filename_ids_and_make_data_indexes_every_image(csv_source, tmp_path):
    out = tmp_path / "spec.yaml"
    draft, spec = _draft_and_load(csv_source, out)
    assert (spec.layout, spec.labels_csv, spec.id_column, spec.label_column) == \
        ("csv", "train_labels.csv", "image", "species")
    assert (spec.train_dir, spec.test_dir) == ("train_images", "test_images")
    assert (spec.sample_submission, spec.submission_id_column, spec.submission_label_column, spec.submission_id) == \
        ("sample_submission.csv", "file_name", "species", "filename")
    assert sorted(spec.archives) == ["sample_submission.csv", "test_images.zip", "train_labels.csv"]
    text = out.read_text()
    assert "# " in text and "2000 of its values name a train image (file names)" in text
    check = spec_check(spec, csv_source)
    assert check.ok, check.problems
    summary = make_data(str(out), str(tmp_path / "data"), str(csv_source))
    assert (summary.n_train, summary.n_test, summary.n_classes) == (2000, 500, 10)
    assert (check.n_train, check.n_test) == (summary.n_train, summary.n_test)


def test_nested_class_folders_and_filename_ids_like_journey_springfield(demo_root, tmp_path):
    source = tmp_path / "springfield"
    nested = source / "train" / "simpsons_dataset"
    shutil.copytree(demo_root / "train", nested)
    tests = source / "testset" / "testset"
    tests.mkdir(parents=True)
    names = []
    for k, path in enumerate(sorted((demo_root / "test").glob("*.jpg"))[:50]):
        shutil.copyfile(path, tests / f"img{k}.jpg")
        names.append(f"img{k}.jpg")
    pd.DataFrame({"Id": names, "Expected": "bart"}).to_csv(source / "sample_submission.csv", index=False)
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert (spec.train_dir, spec.test_dir, spec.submission_id) == ("train/simpsons_dataset", "testset/testset",
                                                                     "filename")
    assert (spec.submission_id_column, spec.submission_label_column) == ("Id", "Expected")
    summary = make_data(str(tmp_path / "spec.yaml"), str(tmp_path / "data"), str(source))
    assert (summary.n_train, summary.n_test, summary.n_classes) == (2000, 50, 10)


@pytest.mark.parametrize("task", ["segmentation", "localization"])
def test_task_found_from_the_labels_csv_columns(task, tmp_path):
    from podium.experiments.synthetic_files import write_shapes_competition

    source = write_shapes_competition(tmp_path / f"ships-{task}", n_train=12, n_test=4, size=32, seed=3,
                                      object_probability=1.0 if task == "localization" else 0.7)
    shutil.rmtree(source / "answers")
    drop = ("train_boxes.csv", "sample_submission_boxes.csv") if task == "segmentation" else \
        ("train_ship_segmentations.csv", "sample_submission.csv")
    for name in drop:
        (source / name).unlink()
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert spec.task == task and spec.layout == "csv" and spec.submission_id == "filename"
    if task == "segmentation":
        assert (spec.labels_csv, spec.rle_column) == ("train_ship_segmentations.csv", "EncodedPixels")
    else:
        assert (spec.labels_csv, spec.label_column, spec.box_columns, spec.box_format) == \
            ("train_boxes.csv", "label", ("x1", "y1", "x2", "y2"), "xyxy")
    assert spec_check(spec, source).ok
    summary = make_data(str(tmp_path / "spec.yaml"), str(tmp_path / "data"), str(source))
    assert (summary.n_train, summary.n_test) == (12, 4)


def _digit_images(folder: Path, classes: list[str], per_class: int, size: int = 8) -> None:
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 255, (size, size), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / name / f"{name}{k}.jpg")


def test_digit_classes_on_8px_images_draft_flip_invariant_false_and_the_size(tmp_path):
    source = tmp_path / "digits"
    _digit_images(source / "train", [str(d) for d in range(10)], 3)
    (source / "test").mkdir()
    for k in range(5):
        Image.fromarray(np.full((8, 8), 40 * k, np.uint8), mode="L").save(source / "test" / f"{k}.png")
    pd.DataFrame({"id": range(5), "label": 0}).to_csv(source / "sample_submission.csv", index=False)
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert spec.flip_invariant is False
    assert draft.images["channels"] == "grayscale" and (draft.images["width"], draft.images["height"]) == (8, 8)
    assert "image_size: 8" in (tmp_path / "spec.yaml").read_text()
    assert spec.image_extensions == (".jpg", ".png")
    assert spec_check(spec, source).ok


def test_check_names_each_problem_with_its_fix(folder_source, tmp_path):
    draft = draft_spec(folder_source)
    draft.set(archives=["train.zip", "test.zip", "labels.csv"], test_dir="testing", submission_id="filename")
    (tmp_path / "bad.yaml").write_text(draft.yaml_text())
    check = spec_check(load_competition(str(tmp_path / "bad.yaml")), folder_source)
    text = "\n".join(check.problems)
    assert len(check.problems) == 2, text
    assert "archives lists 'labels.csv'" in text and "test_dir 'testing' holds no images" in text
    assert all("Fix:" in p for p in check.problems)
    draft.set(archives=["train.zip"], test_dir="test", submission_id="filename", layout="csv",
                        labels_csv="train.csv")
    (tmp_path / "bad2.yaml").write_text(draft.yaml_text())
    problems = spec_check(load_competition(str(tmp_path / "bad2.yaml")), folder_source).problems
    assert any("labels_csv 'train.csv' is not among the files" in p for p in problems)
    assert any("500 of 500 sample submission ids name no file" in p and "submission_id: stem matches 500" in p
               for p in problems)


def test_check_of_a_csv_spec_with_wrong_columns_and_ids(csv_source, tmp_path):
    draft = draft_spec(csv_source)
    draft.set(label_column="Species")
    (tmp_path / "a.yaml").write_text(draft.yaml_text())
    problems = spec_check(load_competition(str(tmp_path / "a.yaml")), csv_source).problems
    assert problems == ["label_column 'Species' is not a column of train_labels.csv. Fix: pick one of "
                        "['image', 'species', 'source']"]
    frame = pd.read_csv(csv_source / "train_labels.csv", dtype=str)
    frame.loc[:2, "image"] = ["nope1.jpg", "nope2.jpg", "nope3.jpg"]
    frame.to_csv(csv_source / "train_labels.csv", index=False)
    draft.set(label_column="species")
    (tmp_path / "b.yaml").write_text(draft.yaml_text())
    check = spec_check(load_competition(str(tmp_path / "b.yaml")), csv_source)
    assert len(check.problems) == 1 and "3 of 2000 ids in train_labels.csv name no image" in check.problems[0]
    assert any("3 images under 'train_images' have no row" in n for n in check.notes)


def test_cli_drafts_then_checks_and_never_overwrites_without_force(folder_source, tmp_path, capsys):
    out = tmp_path / "specs" / "mine.yaml"
    assert main(["spec", "--source", str(folder_source), "--out", str(out), "--slug", "cifar-like"]) == 0
    printed = capsys.readouterr().out
    assert "would index 2000 train images in 10 classes and 500 test images" in printed
    assert f"make data COMP={out}" in printed
    edited = out.read_text().replace("test_dir: test", "test_dir: tset")
    out.write_text(edited)
    assert main(["spec", "--source", str(folder_source), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "exists: checking it" in captured.out and "problem 1: test_dir 'tset' holds no images" in captured.out
    assert "does not fit the files" in captured.err
    assert out.read_text() == edited  # kept as the user left it
    with pytest.raises(PodiumError, match="already exists"):
        write_draft(draft_spec(folder_source), out)
    assert main(["spec", "--source", str(folder_source), "--out", str(out), "--force"]) == 0
    assert yaml.safe_load(out.read_text())["test_dir"] == "test"


def test_a_folder_without_images_or_labels_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "empty" / "notes.csv", index=False)
    with pytest.raises(PodiumError, match="No image files found"):
        draft_spec(tmp_path / "empty")
    flat = tmp_path / "flat"
    (flat / "train").mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(flat / "train" / "a.png")
    with pytest.raises(PodiumError, match="Cannot tell how the train images"):
        draft_spec(flat)
    assert main(["spec"]) == 2


def test_a_premade_validation_folder_beside_train_is_named_in_a_note(demo_root, tmp_path):
    """A dataset split in advance into train/ and valid/; podium reads train_dir only."""
    source = tmp_path / "presplit"
    shutil.copytree(demo_root / "train", source / "train")
    shutil.copytree(demo_root / "test", source / "test")
    shutil.copyfile(demo_root / "sample_submission.csv", source / "sample_submission.csv")
    for label in ("cat", "dog"):
        (source / "valid" / label).mkdir(parents=True)
        for path in sorted((source / "train" / label).glob("*.jpg"))[:20]:
            path.rename(source / "valid" / label / path.name)
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert spec.train_dir == "train"
    check = spec_check(spec, source)
    assert check.ok and check.n_train == 1960
    assert any(n.startswith("valid also hold(s) folders of these classes") for n in check.notes), check.notes


def test_labels_written_as_paths_relative_to_the_train_folder(demo_root, tmp_path):
    source = tmp_path / "paths"
    shutil.copytree(demo_root / "train", source / "data" / "images")
    shutil.copytree(demo_root / "test", source / "test")
    shutil.copyfile(demo_root / "sample_submission.csv", source / "sample_submission.csv")
    rows = [{"path": p.relative_to(source / "data" / "images").as_posix(), "kind": p.parent.name}
            for p in sorted((source / "data" / "images").glob("*/*.jpg"))]
    pd.DataFrame(rows).to_csv(source / "meta.csv", index=False)
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert (spec.layout, spec.train_dir, spec.id_column, spec.label_column) == ("csv", "data/images", "path", "kind")
    check = spec_check(spec, source)
    assert check.ok, check.problems
    assert check.n_train == 2000


def test_without_out_the_spec_goes_beside_the_configs_and_a_second_run_checks_it(folder_source, tmp_path,
                                                                                 monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["spec", "--source", str(folder_source), "--slug", "my-comp"]) == 0
    written = tmp_path / "configs" / "competitions" / "my-comp.yaml"
    assert load_competition(str(written)).slug == "my-comp"
    before = written.read_text()
    assert main(["spec", "--source", str(folder_source), "--slug", "my-comp"]) == 0
    assert "exists: checking it" in capsys.readouterr().out and written.read_text() == before


def test_two_labels_csvs_pick_one_with_its_matching_sample_and_name_the_other(tmp_path):
    """The generated shapes competition ships boxes and run-length masks side by side, with a sample each."""
    from podium.experiments.synthetic_files import write_shapes_competition

    source = write_shapes_competition(tmp_path / "shapes", n_train=10, n_test=4, size=32, seed=5)
    shutil.rmtree(source / "answers")
    draft, spec = _draft_and_load(source, tmp_path / "spec.yaml")
    assert (spec.task, spec.labels_csv, spec.sample_submission) == \
        ("localization", "train_boxes.csv", "sample_submission_boxes.csv")
    text = (tmp_path / "spec.yaml").read_text()
    assert "# other labels CSVs found: train_ship_segmentations.csv (segmentation, 10 images)" in text
    assert spec_check(spec, source).ok
