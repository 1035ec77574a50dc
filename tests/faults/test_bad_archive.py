"""Archives as people really send them: written on Windows (backslash paths), zipped twice (Kaggle's
whole-competition download holds train.zip), with the images one folder deeper than the spec says,
damaged inside. Each ends as a correct unpack or as an error that says what the archive holds and which
spec field to change; never the circular "run make data first"."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from podium.data.extract import safe_unzip
from podium.data.index import load_index
from podium.errors import PodiumError
from tests_support import make_data
from tests_support import real_demo_jpegs

CLASSES = ("bird", "cat")


def _members(prefix: str = "", sep: str = "/") -> dict[str, bytes]:
    """8 real train JPEGs in two class folders and 3 test JPEGs, under `prefix`, joined with `sep`."""
    jpegs = real_demo_jpegs(11)
    files = {sep.join([*filter(None, [prefix]), "train", CLASSES[k % 2], f"{k}.jpg"]): jpegs[k] for k in range(8)}
    files.update({sep.join([*filter(None, [prefix]), "test", f"t{k}.jpg"]): jpegs[8 + k] for k in range(3)})
    return files


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _competition(tmp_path: Path, archives: dict[str, bytes], spec: str = "") -> tuple[Path, Path, Path]:
    """(spec path, source folder, data_dir) of a small folder-layout competition."""
    source = tmp_path / "source"
    source.mkdir()
    for name, data in archives.items():
        (source / name).write_bytes(data)
    spec_path = tmp_path / "mini.yaml"
    spec_path.write_text(f"slug: mini\narchives: [{', '.join(archives)}]\n{spec}")
    return spec_path, source, tmp_path / "data"


def test_windows_backslash_paths_unpack_as_folders(tmp_path):
    spec, source, data = _competition(tmp_path, {"all.zip": _zip(_members(sep="\\"))})
    summary = make_data(str(spec), str(data), str(source))
    assert (summary.n_train, summary.n_test, summary.n_classes) == (8, 3, 2)
    assert (data / "mini" / "train" / "bird" / "0.jpg").is_file()
    assert not [p for p in (data / "mini").rglob("*") if "\\" in p.name]


@pytest.mark.parametrize("member", ["..\\evil.jpg", "train\\..\\..\\evil.jpg", "C:\\evil.jpg", "\\evil.jpg"])
def test_backslash_paths_get_the_same_safety_checks(tmp_path, member):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(_zip({"train\\bird\\0.jpg": b"x", member: b"evil"}))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PodiumError, match="Refusing to extract"):
        safe_unzip(archive, out)
    assert list(out.rglob("*")) == [] and not list(tmp_path.rglob("evil.jpg"))


def test_a_zip_inside_the_zip_is_unpacked_one_level(tmp_path):
    """Kaggle's `<slug>.zip` of a whole competition holds train.zip and test.zip."""
    members = _members()
    inner = {"train.zip": _zip({k: v for k, v in members.items() if k.startswith("train/")}),
             "test.zip": _zip({k: v for k, v in members.items() if k.startswith("test/")})}
    spec, source, data = _competition(tmp_path, {"mini.zip": _zip(inner)})
    summary = make_data(str(spec), str(data), str(source))
    assert (summary.n_train, summary.n_test) == (8, 3)
    assert not list((data / "mini").glob("*.zip"))  # unpacked, then dropped; data/raw keeps the original


def test_a_zip_nested_deeper_is_named_not_sent_back_to_make_data(tmp_path):
    deeper = _zip({"level2.zip": _zip({"level3.zip": _zip(_members())})})
    spec, source, data = _competition(tmp_path, {"only.zip": deeper})
    with pytest.raises(PodiumError) as caught:
        make_data(str(spec), str(data), str(source))
    text = str(caught.value)
    assert "have no train folder 'train'" in text and "level3.zip (a zip inside the archive)" in text
    assert "set train_dir" in text and "run `make data COMP" not in text
    assert "unzip the outer archives yourself" in text and "run `make data SRC=<that folder>`" in text
    unzipped = tmp_path / "unzipped"  # the fix, as given: the zip that holds the images, named in the spec
    unzipped.mkdir()
    (unzipped / "level3.zip").write_bytes(_zip(_members()))
    spec.write_text("slug: mini\narchives: [level3.zip]\n")
    summary = make_data(str(spec), str(data), str(unzipped))
    assert (summary.n_train, summary.n_test) == (8, 3)


def test_images_one_folder_deeper_get_the_folder_to_write_in_the_spec_and_that_fix_works(tmp_path):
    spec, source, data = _competition(tmp_path, {"all.zip": _zip(_members(prefix="dataset"))})
    with pytest.raises(PodiumError) as caught:
        make_data(str(spec), str(data), str(source))
    text = str(caught.value)
    assert "the archives unpacked to: dataset/ (2 folders, 0 files)" in text
    assert "set train_dir: dataset/train in the competition spec" in text
    spec.write_text(spec.read_text() + "train_dir: dataset/train\ntest_dir: dataset/test\n")
    summary = make_data(str(spec), str(data), str(source))  # the fix the message gives, as given
    assert (summary.n_train, summary.n_test, summary.extracted) == (8, 3, False)


def test_a_member_with_damaged_bytes_is_named(tmp_path):
    data = bytearray(_zip({"train/bird/0.jpg": real_demo_jpegs(1)[0]}))
    data[60] ^= 0xFF  # inside the stored JPEG: the CRC no longer matches
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(PodiumError, match=r"damaged\.zip is damaged: member 'train/bird/0\.jpg'.*FORCE=1"):
        safe_unzip(archive, tmp_path / "out")


def test_a_truncated_archive_fails_cleanly_and_keeps_nothing(tmp_path):
    whole = _zip(_members())
    spec, source, data = _competition(tmp_path, {"all.zip": whole[: len(whole) // 2]})
    with pytest.raises(PodiumError, match="not a readable zip file"):
        make_data(str(spec), str(data), str(source))
    assert not (data / "mini").exists() and not list(data.glob(".mini.partial"))


def _bmp_zip(shade: int) -> bytes:
    """Train and test images as BMPs stored uncompressed: a changed pixel changes the bytes, not the size."""
    files = {}
    for k in range(6):
        image = io.BytesIO()
        Image.new("RGB", (16, 16), (shade if k == 0 else 10 * k, 80, 160)).save(image, format="BMP")
        files[f"train/{CLASSES[k % 2]}/{k}.bmp" if k < 4 else f"test/t{k}.bmp"] = image.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


@pytest.mark.parametrize("same_mtime", [False, True], ids=["new-mtime", "same-mtime"])
def test_a_source_file_changed_in_place_with_the_same_size_is_copied_again(tmp_path, same_mtime):
    """`make data SRC=` used to compare sizes only and kept the stale copy (silently wrong)."""
    spec, source, data = _competition(tmp_path, {"all.zip": _bmp_zip(shade=0)})
    first = make_data(str(spec), str(data), str(source))
    index_before = load_index(first.root / "index.parquet").set_index("id")["hash"]
    before = (source / "all.zip").stat()
    (source / "all.zip").write_bytes(_bmp_zip(shade=255))
    assert (source / "all.zip").stat().st_size == before.st_size  # same size, other bytes
    if same_mtime:
        os.utime(source / "all.zip", ns=(before.st_atime_ns, before.st_mtime_ns))
    second = make_data(str(spec), str(data), str(source))  # the same command, no FORCE
    assert (data / "raw" / "mini" / "all.zip").read_bytes() == (source / "all.zip").read_bytes()
    assert second.extracted
    index_after = load_index(second.root / "index.parquet").set_index("id")["hash"]
    assert index_after["bird/0"] != index_before["bird/0"] and index_after["cat/1"] == index_before["cat/1"]
    third = make_data(str(spec), str(data), str(source))
    assert not third.extracted  # unchanged now: nothing copied or unpacked again
