"""Class 5 of issue 21: labels that are not what they seem, and what a new user meets at `make spec`.

The labels CSV is read in one place (podium.data.source_files): cells are trimmed of spaces (and
`make data` says how many were), a line with more cells than the header is an error naming the line, a
file separated by semicolons or tabs is named as such. `make spec` (podium.spec) names the
cause when no CSV labels the images: the separator, or ids that lost their leading zeros. A run records the
classes it was trained on; predict refuses another class list. Also: `make spec` says which slug it used
and how to set it; `make folds` with a holdout prints training and validation counts, not "folds".
"""

import zipfile
from pathlib import Path

import pytest

from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from podium.workflow import check_trained_classes
from tests_support import real_demo_jpegs

CLASSES = ["cat", "dog"]


def _competition(tmp_path: Path, labels: str, task: str = "classification", n: int = 8,
                 name: str = "0{:03d}") -> tuple[Path, Path]:
    """A labels-CSV competition from real JPEGs: (source folder, spec YAML). Ids are zero-padded stems."""
    source = tmp_path / "source"
    (source / "train").mkdir(parents=True)
    (source / "test").mkdir()
    jpegs = real_demo_jpegs(n + 2)
    for i in range(n):
        (source / "train" / f"{name.format(i)}.jpg").write_bytes(jpegs[i])
    for i in range(2):
        (source / "test" / f"t{i}.jpg").write_bytes(jpegs[n + i])
    (source / "labels.csv").write_bytes(labels.encode("utf-8"))
    (source / "sample_submission.csv").write_text("id,label\nt0,cat\nt1,cat\n")
    spec = tmp_path / "mini.yaml"
    spec.write_text(f"slug: mini\ntask: {task}\nlayout: csv\narchives: [labels.csv, sample_submission.csv]\n"
                    "train_dir: train\nlabels_csv: labels.csv\nid_column: id\nlabel_column: label\n"
                    "test_dir: test\nsample_submission: sample_submission.csv\n"
                    + ("classes: [cat, dog]\nmetric: micro_f1\n" if task == "multilabel" else ""))
    return source, spec


def _data(capsys, tmp_path, source, spec):
    code = main(["data", "--competition", str(spec), "--source", str(source), "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("cell", ["cat ", " cat", "cat\t", "  cat  "])
def test_spaces_around_a_label_do_not_make_a_second_class_and_are_reported(tmp_path, capsys, cell):
    rows = [f"0{i:03d},{cell if i == 1 else CLASSES[i % 2]}" for i in range(8)]
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n")
    code, out, err = _data(capsys, tmp_path, source, spec)
    assert code == 0, err
    assert "in 2 classes" in out
    assert "data: note: labels.csv: 1 cell(s) had spaces around them" in out and repr(cell) in out


def test_spaces_around_an_id_still_find_its_image(tmp_path, capsys):
    rows = [f"{' 0' if i == 3 else '0'}{i:03d} ,{CLASSES[i % 2]}" for i in range(8)]
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n")
    code, out, err = _data(capsys, tmp_path, source, spec)
    assert code == 0, err
    assert "8 train images in 2 classes" in out


@pytest.mark.parametrize("bad_line, number", [("0002,cat,dog", 4), ("0005,dog,cat,cat", 7)])
def test_an_unquoted_comma_in_a_multilabel_csv_names_the_line(tmp_path, capsys, bad_line, number):
    rows = [f"0{i:03d},{CLASSES[i % 2]}" for i in range(8)]
    rows[number - 2] = bad_line
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n", task="multilabel")
    code, out, err = _data(capsys, tmp_path, source, spec)
    assert code == 2 and "Traceback" not in err
    assert f"Line {number} of the labels CSV" in err and "quoted" in err


def test_a_quoted_comma_cell_is_read_as_one_cell(tmp_path, capsys):
    rows = [f"0{i:03d},{CLASSES[i % 2]}" for i in range(8)]
    rows[2] = '0002,"cat dog"'
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n", task="multilabel")
    code, out, err = _data(capsys, tmp_path, source, spec)
    assert code == 0, err


@pytest.mark.parametrize("sep, word", [(";", "semicolons"), ("\t", "tabs")])
def test_a_labels_csv_with_another_separator_is_named_at_make_data(tmp_path, capsys, sep, word):
    rows = [f"0{i:03d}{sep}{CLASSES[i % 2]}" for i in range(8)]
    source, spec = _competition(tmp_path, f"id{sep}label\n" + "\n".join(rows) + "\n")
    code, out, err = _data(capsys, tmp_path, source, spec)
    assert code == 2 and f"separated by {word}, not commas" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------- make spec
def _spec(capsys, source, *extra):
    code = main(["spec", "--source", str(source), "--out", str(source.parent / "drafted.yaml"), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("sep, word", [(";", "semicolons"), ("\t", "tabs"), ("|", "'|'")])
def test_make_spec_names_the_separator_of_a_labels_csv(tmp_path, capsys, sep, word):
    rows = [f"0{i:03d}{sep}{CLASSES[i % 2]}" for i in range(8)]
    source, _ = _competition(tmp_path, f"id{sep}label\n" + "\n".join(rows) + "\n")
    code, _, err = _spec(capsys, source)
    assert code == 2 and f"labels.csv is separated by {word}, not commas" in err


@pytest.mark.parametrize("name, shown", [("0{:03d}", "12"), ("{:05d}", "7")])
def test_make_spec_names_ids_that_lost_their_leading_zeros(tmp_path, capsys, name, shown):
    n = 14
    rows = [f"{i},{CLASSES[i % 2]}" for i in range(n)]  # as Excel saves 0012: 12
    source, _ = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n", n=n, name=name)
    code, _, err = _spec(capsys, source)
    assert code == 2 and "lost their leading zeros" in err and "column 'id'" in err
    assert "zfill" in err


def test_make_spec_says_which_slug_it_used_and_how_to_set_it(tmp_path, capsys):
    rows = [f"0{i:03d},{CLASSES[i % 2]}" for i in range(8)]
    source, _ = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n")
    code, out, err = _spec(capsys, source)
    assert code == 0, err
    assert "slug 'source' (from the folder name 'source')" in out and "SLUG=<slug>" in out
    code, out, err = _spec(capsys, source, "--slug", "mini-comp", "--force")
    assert code == 0 and "slug 'mini-comp'" in out


@pytest.mark.parametrize("slug", ["My_Competition", "dog breeds", "-lead", "a--b", "../x", "UPPER"])
def test_make_spec_refuses_a_slug_kaggle_would_not_have(tmp_path, capsys, slug):
    (tmp_path / "src").mkdir()
    code = main(["spec", "--source", str(tmp_path / "src"), f"--slug={slug}"])
    err = capsys.readouterr().err
    assert code == 2 and "not a Kaggle competition slug" in err and "SLUG=" in err
    assert not (tmp_path / "configs").exists()


# ---------------------------------------------------------------------------------- trained classes
def test_predict_refuses_a_class_list_the_run_was_not_trained_on():
    cfg = load_config(None, {})
    check_trained_classes(cfg, ["cat", "dog"], ["cat", "dog"])
    check_trained_classes(cfg, None, ["cat", "dog", "fox"])  # a run recorded before classes were: checked later
    check_trained_classes(cfg, 3, ["cat", "dog", "fox"])
    for trained, now, said in ((["cat", "dog"], ["cat", "dog", "fox"], "added ['fox']"),
                               (["cat", "dog", "fox"], ["cat", "dog"], "gone ['fox']"),
                               (["cat", "dog"], ["dog", "cat"], "another order"),
                               (2, ["cat", "dog", "fox"], "3 classes now")):
        with pytest.raises(PodiumError, match="trained on other classes") as caught:
            check_trained_classes(cfg, trained, now)
        assert said in str(caught.value) and "make train FORCE=1" in str(caught.value)


# ------------------------------------------------------------------------------------- make folds
def test_make_folds_with_a_holdout_prints_training_and_validation_counts(tmp_path, capsys):
    rows = [f"0{i:03d},{CLASSES[i % 2]}" for i in range(20)]
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n", n=20)
    assert _data(capsys, tmp_path, source, spec)[0] == 0
    common = [f"competition={spec}", f"data_dir={tmp_path / 'data'}"]
    assert main(["folds", *common, "val_split=0.2"]) == 0
    out = capsys.readouterr().out
    assert "holdout: 16 training images, 4 validation images (20% held out)" in out
    assert "per fold" not in out
    assert main(["folds", *common, "n_folds=2"]) == 0
    assert "validation images per fold: 0=10, 1=10" in capsys.readouterr().out


@pytest.mark.slow
def test_a_class_added_to_the_spec_after_training_is_refused_at_predict(tmp_path, capsys):
    rows = [f"0{i:03d},{CLASSES[i % 2]}" for i in range(12)]
    source, spec = _competition(tmp_path, "id,label\n" + "\n".join(rows) + "\n", n=12)
    spec.write_text(spec.read_text() + "classes: [cat, dog]\n")
    assert _data(capsys, tmp_path, source, spec)[0] == 0
    common = [f"competition={spec}", f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
              f"submissions_dir={tmp_path / 'subs'}", "val_split=0.25", "epochs=1", "image_size=32",
              "batch_size=4", "verbose=0", "tta=[identity]"]
    assert main(["train", *common]) == 0
    spec.write_text(spec.read_text().replace("classes: [cat, dog]", "classes: [cat, dog, fox]"))
    capsys.readouterr()
    assert main(["predict", *common]) == 2
    err = capsys.readouterr().err
    assert "trained on other classes" in err and "added ['fox']" in err and "make train FORCE=1" in err
    assert "Traceback" not in err
    spec.write_text(spec.read_text().replace("classes: [cat, dog, fox]", "classes: [cat, dog]"))
    assert main(["predict", *common]) == 0
