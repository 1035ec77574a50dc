import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from podium.data.competitions import load_competition
from podium.data.cache import load_cached
from podium.data.images import ImageDecodeError, load_resized
from podium.data.index import build_index
from podium.errors import PodiumError
from podium.tasks import get_task
from tests_support import mini_demo

SIZE = 24


@pytest.fixture
def mini(demo_root, tmp_path):
    """(data_root, index) of 30 train + 6 test demo images copied to a folder the test may break."""
    return mini_demo(demo_root, tmp_path / "mini", 3, 6)


def train_rows(index):
    return index[index.split == "train"].reset_index(drop=True)


def cache_files(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir())


def test_shape_dtype_values_and_read_only(mini, tmp_path):
    root, index = mini
    rows = train_rows(index)
    images = load_cached(rows, root, SIZE, tmp_path / "cache", progress=False)
    assert isinstance(images, np.memmap)
    assert images.shape == (30, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert not images.flags.writeable
    for position, path in enumerate(rows.path):
        assert np.array_equal(images[position], load_resized(root / path, SIZE))
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1


def test_rows_in_the_order_given(mini, tmp_path):
    root, index = mini
    rows = train_rows(index)
    forward = np.asarray(load_cached(rows, root, SIZE, tmp_path / "cache", progress=False))
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled = load_cached(rows.iloc[order], root, SIZE, tmp_path / "cache", progress=False)
    assert np.array_equal(np.asarray(shuffled), forward[order])
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 2  # another order is another cache


def test_file_name_and_sidecar(mini, tmp_path):
    root, index = mini
    load_cached(train_rows(index), root, SIZE, tmp_path / "cache", progress=False)
    names = cache_files(tmp_path / "cache")
    assert len(names) == 2 and re.fullmatch(r"train-24-[0-9a-f]{12}\.json", names[0])
    assert names[1] == names[0].replace(".json", ".u8")
    meta = json.loads((tmp_path / "cache" / names[0]).read_text())
    assert meta["shape"] == [30, SIZE, SIZE, 3] and meta["ids"] == 30
    assert meta["fingerprint"] == names[0].split("-")[2].removesuffix(".json")
    assert (tmp_path / "cache" / names[1]).stat().st_size == 30 * SIZE * SIZE * 3


def test_second_call_only_opens_the_cache(mini, tmp_path):
    root, index = mini
    rows, cache_dir = train_rows(index), tmp_path / "cache"
    first = np.array(load_cached(rows, root, SIZE, cache_dir, progress=False))
    (data_file,) = cache_dir.glob("*.u8")
    mtime = data_file.stat().st_mtime_ns
    shutil.rmtree(root / "train")  # nothing left to decode: a rebuild would fail
    second = load_cached(rows, root, SIZE, cache_dir, progress=True)
    assert np.array_equal(np.asarray(second), first)
    assert data_file.stat().st_mtime_ns == mtime
    assert len(cache_files(cache_dir)) == 2


def test_changed_rows_or_size_make_a_new_cache(mini, tmp_path):
    root, index = mini
    rows, cache_dir = train_rows(index), tmp_path / "cache"
    load_cached(rows, root, SIZE, cache_dir, progress=False)
    fewer = load_cached(rows.iloc[:-1], root, SIZE, cache_dir, progress=False)
    bigger = load_cached(rows, root, 2 * SIZE, cache_dir, progress=False)
    mixed = load_cached(index, root, SIZE, cache_dir, progress=False)
    test = load_cached(index[index.split == "test"], root, SIZE, cache_dir, progress=False)
    assert fewer.shape[0] == 29 and bigger.shape[1:3] == (48, 48) and mixed.shape[0] == 36
    names = [p.name for p in cache_dir.glob("*.u8")]
    assert len(set(names)) == 5
    assert sum(n.startswith("mixed-24-") for n in names) == 1 and sum(n.startswith("test-24-") for n in names) == 1
    assert sum(n.startswith("train-48-") for n in names) == 1


def test_changed_file_content_makes_a_new_cache(mini, tmp_path):
    root, index = mini
    cache_dir = tmp_path / "cache"
    before = load_cached(train_rows(index), root, SIZE, cache_dir, progress=False)
    replaced = root / train_rows(index).path[0]
    shutil.copy(root / "test" / "1.jpg", replaced)  # same id, different picture
    reindexed = train_rows(build_index(load_competition("demo"), root, get_task("classification")))
    after = load_cached(reindexed, root, SIZE, cache_dir, progress=False)
    assert len(list(cache_dir.glob("*.u8"))) == 2
    assert not np.array_equal(before[0], after[0])
    assert np.array_equal(after[0], load_resized(root / "test" / "1.jpg", SIZE))
    assert np.array_equal(before[1:], after[1:])


def test_file_changed_since_indexing_is_refused(mini, tmp_path):
    root, index = mini
    rows = train_rows(index)
    shutil.copy(root / "test" / "1.jpg", root / rows.path[3])
    with pytest.raises(PodiumError, match="changed since the index was built") as caught:
        load_cached(rows, root, SIZE, tmp_path / "cache", progress=False)
    assert rows.path[3] in str(caught.value)


def test_unreadable_rows_are_refused(mini, tmp_path):
    root, index = mini
    rows = train_rows(index).copy()
    rows.loc[4, "ok"] = False
    with pytest.raises(PodiumError, match="ok=False") as caught:
        load_cached(rows, root, SIZE, tmp_path / "cache", progress=False)
    assert repr(rows.id[4]) in str(caught.value) and "filter" in str(caught.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_failed_build_leaves_no_cache(mini, tmp_path):
    root, index = mini
    rows, cache_dir = train_rows(index).copy(), tmp_path / "cache"
    broken = root / rows.path[7]
    broken.write_bytes(broken.read_bytes()[:200])
    rows.loc[7, "hash"] = hashlib.sha1(broken.read_bytes()).hexdigest()  # an index that missed it
    with pytest.raises(ImageDecodeError, match=rows.path[7]):
        load_cached(rows, root, SIZE, cache_dir, progress=False)
    assert cache_files(cache_dir) == []  # neither a half cache nor a temp file
    good = rows.drop(index=7)
    assert load_cached(good, root, SIZE, cache_dir, progress=False).shape[0] == 29


def test_incomplete_cache_is_rebuilt(mini, tmp_path):
    root, index = mini
    rows, cache_dir = train_rows(index), tmp_path / "cache"
    expected = np.array(load_cached(rows, root, SIZE, cache_dir, progress=False))
    (data_file,) = cache_dir.glob("*.u8")
    data_file.write_bytes(data_file.read_bytes()[:1000])  # e.g. a disk that filled up
    assert np.array_equal(np.asarray(load_cached(rows, root, SIZE, cache_dir, progress=False)), expected)
    data_file.with_suffix(".json").unlink()  # the sidecar is written last: no sidecar, no trust
    mtime = data_file.stat().st_mtime_ns
    assert np.array_equal(np.asarray(load_cached(rows, root, SIZE, cache_dir, progress=False)), expected)
    assert data_file.stat().st_mtime_ns != mtime and data_file.with_suffix(".json").is_file()


def test_no_rows_and_bad_size(mini, tmp_path):
    root, index = mini
    empty = load_cached(index.iloc[:0], root, SIZE, tmp_path / "cache", progress=False)
    assert empty.shape == (0, SIZE, SIZE, 3) and empty.dtype == np.uint8 and not empty.flags.writeable
    with pytest.raises(PodiumError, match="positive"):
        load_cached(train_rows(index), root, 0, tmp_path / "cache", progress=False)
    with pytest.raises(PodiumError, match="not index rows"):
        load_cached(index[["id", "path"]], root, SIZE, tmp_path / "cache", progress=False)
