import zipfile

import pytest

from podium.competitions import load_competition
from podium.data.extract import extract, fetch, safe_unzip
from podium.errors import PodiumError


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
