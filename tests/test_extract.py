import zipfile

import pytest

from podium.data.competitions import load_competition
from podium.data.extract import extract, fetch, safe_unzip
from podium.errors import PodiumError
from podium.tasks import get_task


def test_demo_fetch_and_extract_is_idempotent(tmp_path):
    spec = load_competition("demo")
    raw, root = tmp_path / "raw" / "demo", tmp_path / "demo"
    files = fetch(spec, raw)
    assert {p.name for p in files} == {"train.zip", "test.zip", "sample_submission.csv"}
    assert extract(spec, raw, root) is True
    assert len(list((root / "train").rglob("*.jpg"))) == 2000
    assert len(list((root / "test").glob("*.jpg"))) == 500
    assert (root / "sample_submission.csv").is_file()
    assert extract(spec, raw, root) is False  # nothing to do the second time
    assert extract(spec, raw, root, force=True) is True


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
def test_zip_slip_is_refused_and_nothing_is_written(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/ok.txt", "fine")
        zf.writestr(member, "evil")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PodiumError, match="Refusing to extract"):
        safe_unzip(archive, out)
    assert list(out.rglob("*")) == []  # checked before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("train/link")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PodiumError, match="symbolic link"):
        safe_unzip(archive, tmp_path / "out")


def test_failed_extraction_leaves_previous_data_intact(tmp_path):
    spec = load_competition("demo")
    raw, root = tmp_path / "raw" / "demo", tmp_path / "demo"
    fetch(spec, raw)
    extract(spec, raw, root)
    (raw / "test.zip").write_bytes(b"not a zip at all")
    with pytest.raises(PodiumError, match="not a readable zip"):
        extract(spec, raw, root)
    assert len(list((root / "test").glob("*.jpg"))) == 500  # the earlier extraction is untouched
    assert not list(tmp_path.glob(".demo.partial"))


def test_missing_source_folder(tmp_path):
    with pytest.raises(PodiumError, match="SRC="):
        fetch(load_competition("cifar10"), tmp_path / "raw", source_dir=tmp_path / "nowhere")


def test_an_unpacked_source_as_kaggle_kernels_see_it_is_linked_not_copied(tmp_path):
    """/kaggle/input/<slug> holds folders (Airbus' train_v2/), not zips: they are linked, read in place."""
    import zipfile

    from podium.config import ExperimentConfig
    from podium.data.dataset import load_labeled_data
    from podium.experiments.synthetic_files import write_shapes_competition
    from tests_support import make_data

    raw = write_shapes_competition(tmp_path / "raw", n_train=10, n_test=3, size=32, seed=4, object_probability=0.7)
    kaggle_input = tmp_path / "kaggle-input"
    kaggle_input.mkdir()
    for name in ("train.zip", "test.zip"):
        with zipfile.ZipFile(raw / name) as archive:
            archive.extractall(kaggle_input)
    for name in ("train_ship_segmentations.csv", "sample_submission.csv"):
        (kaggle_input / name).write_bytes((raw / name).read_bytes())

    summary = make_data("shapes-segmentation", str(tmp_path / "data"), source_dir=str(kaggle_input))
    assert (summary.n_train, summary.n_test, summary.bad_files) == (10, 3, [])
    root = tmp_path / "data" / "shapes-segmentation"
    assert (root / "train").is_symlink() and (root / "train").resolve() == (kaggle_input / "train").resolve()
    cfg = ExperimentConfig(competition="shapes-segmentation", data_dir=str(tmp_path / "data"), task="segmentation",
                           monitor="val_dice", image_size=32, val_split=0.3)
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    assert data.images.shape == (10, 32, 32, 3) and data.targets.shape == (10, 32, 32, 1)
    # a second `make data` sees the same linked folders and unpacks nothing; the source is untouched
    assert not make_data("shapes-segmentation", str(tmp_path / "data"), source_dir=str(kaggle_input)).extracted
    assert len(list((kaggle_input / "train").iterdir())) == 10


def test_a_missing_archive_named_in_the_spec_is_still_an_error_when_no_folder_stands_in(tmp_path):
    from podium.data.competitions import load_competition
    from podium.data.extract import fetch

    source = tmp_path / "src"
    (source / "test").mkdir(parents=True)  # test/ stands in for test.zip; nothing stands in for train.zip
    (source / "train_ship_segmentations.csv").write_text("ImageId,EncodedPixels\n")
    (source / "sample_submission.csv").write_text("ImageId,EncodedPixels\n")
    with pytest.raises(PodiumError, match="missing files") as err:
        fetch(load_competition("shapes-segmentation"), tmp_path / "raw", source)
    assert "train.zip" in err.value.expected and "test" in err.value.received


def test_files_copied_from_a_folder_are_kept_by_later_stages_without_asking_kaggle(tmp_path, monkeypatch):
    """`make data SRC=<folder>` then `make run`/`make train` (no SRC): the copied files are used; nothing asks
    Kaggle for credentials. Without that record (or with FORCE=1) the same call goes to Kaggle."""
    from podium.kaggle.source import KAGGLE_SOURCE
    from tests_support import DEMO_DIR

    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-here"))
    spec, raw = load_competition("cifar10"), tmp_path / "raw" / "cifar10"
    copied = fetch(spec, raw, source_dir=DEMO_DIR)
    assert fetch(spec, raw) == copied
    assert extract(spec, raw, tmp_path / "cifar10") is True

    with pytest.raises(PodiumError, match="Kaggle credentials"):
        fetch(spec, raw, force=True, sources={"kaggle": KAGGLE_SOURCE})
    (tmp_path / "raw" / "cifar10.source.json").unlink()
    with pytest.raises(PodiumError, match="Kaggle credentials"):
        fetch(spec, raw, sources={"kaggle": KAGGLE_SOURCE})


def test_make_data_refuses_a_task_other_than_the_specs(tmp_path):
    """The entry point resolves the spec's task; another one is named before anything is fetched."""
    from podium.workflow import prepare_data

    with pytest.raises(PodiumError, match="is a classification competition, the task given is segmentation"):
        prepare_data("demo", get_task("segmentation"), str(tmp_path / "data"))
    assert not (tmp_path / "data" / "raw").exists()
