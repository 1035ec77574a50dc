"""How pixels are held (config key `cache`): streamed rows are the cache's bytes for every way of indexing
them, `auto` picks disk, memory or streaming from the free space and RAM it is given and says why in
sizes, `memory` that does not fit is refused before any decode, masks follow the images' mode, and a file
changed after indexing is the cache's own error while streaming. All on the real demo JPEGs and the
generated shapes competition."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from podium.config import ExperimentConfig
from podium.data.cache import CacheChoice, choose_cache, image_reader, load_cached, load_images
from podium.data.dataset import load_labeled_data
from podium.data.pipeline import ImageBatches
from podium.data.stream import StreamedRows, take
from podium.errors import PodiumError
from podium.experiments.synthetic_files import write_shapes_competition
from podium.tasks import get_task
from tests_support import make_data, mini_demo

SIZE = 40
GIB = 1024 ** 3


@pytest.fixture(scope="module")
def demo_rows(tmp_path_factory, demo_root):
    """(data_root, train rows, the cache of them) of 60 demo train images copied to a module folder."""
    root, index = mini_demo(demo_root, tmp_path_factory.mktemp("mini") / "demo", 6, 1)
    rows = index[index.split == "train"].reset_index(drop=True)
    return root, rows, np.array(load_cached(rows, root, SIZE, root / "cache", progress=False))


def _streamed(root, rows, workers=None) -> StreamedRows:
    return StreamedRows((len(rows), SIZE, SIZE, 3), image_reader(rows, root, SIZE), workers=workers)


# ---- StreamedRows: the cache's bytes --------------------------------------------------------------------
@pytest.mark.parametrize("key", [7, -1, np.int64(3), slice(None), slice(5, 20, 3), slice(None, None, -7),
                                 [9, 2, 2, 31], np.array([40, 1, 17, 0, 59]), np.array([], dtype=int)],
                         ids=["int", "negative", "np-int", "all", "stepped", "reversed", "list-repeats",
                              "unsorted", "empty"])
def test_streamed_rows_are_the_cache_bytes_however_indexed(demo_rows, key):
    root, rows, cached = demo_rows
    assert len(rows) == 60 and cached.shape == (60, SIZE, SIZE, 3)
    streamed = _streamed(root, rows)
    assert streamed.shape == cached.shape and streamed.dtype == cached.dtype and len(streamed) == 60
    got = streamed[key]
    assert got.dtype == np.uint8 and got.shape == cached[key].shape
    assert np.array_equal(got, cached[key])


def test_whole_array_boolean_rows_take_and_one_thread(demo_rows):
    root, rows, cached = demo_rows
    streamed = _streamed(root, rows, workers=1)
    assert np.array_equal(np.asarray(streamed), cached)
    assert np.asarray(streamed, dtype=np.float32).dtype == np.float32
    chosen = np.arange(60) % 4 == 1
    assert np.array_equal(streamed[chosen], cached[chosen])
    subset = take(_streamed(root, rows), [50, 3, 12])
    assert isinstance(subset, StreamedRows) and subset.shape == (3, SIZE, SIZE, 3)
    assert np.array_equal(subset[[2, 0]], cached[[12, 50]])
    assert np.array_equal(take(subset, [1])[0], cached[3])
    in_memory = take(cached, [50, 3])
    assert isinstance(in_memory, np.ndarray) and np.array_equal(in_memory, cached[[50, 3]])


def test_out_of_range_and_other_axes_are_refused(demo_rows):
    root, rows, _ = demo_rows
    streamed = _streamed(root, rows)
    with pytest.raises(IndexError):
        streamed[60]
    with pytest.raises(IndexError):
        streamed[[0, -61]]
    with pytest.raises(PodiumError, match="indexed by rows only"):
        streamed[0, 1]


def test_image_batches_over_streamed_rows_are_those_over_the_cache(demo_rows):
    """Shuffled, labelled batches: same order, same pixels, same labels, epoch after epoch."""
    root, rows, cached = demo_rows
    labels = np.arange(60) % 3
    batches = [ImageBatches(images, np.arange(5, 60), labels, 3, batch_size=16, shuffle=True, seed=4)
               for images in (cached, _streamed(root, rows))]
    for _ in range(2):
        for i in range(len(batches[0])):
            (x_cache, y_cache), (x_stream, y_stream) = batches[0][i], batches[1][i]
            assert np.array_equal(x_cache, x_stream) and np.array_equal(y_cache, y_stream)
        for loader in batches:
            loader.on_epoch_end()


# ---- choose_cache: one decision, said in sizes -----------------------------------------------------------
def test_auto_picks_disk_memory_or_streaming_and_names_the_sizes():
    where = Path("data/melanoma/cache")
    need = 26 * GIB
    disk = choose_cache("auto", need, where, free_disk=100 * GIB, available_ram=8 * GIB)
    assert disk.mode == "disk" and "26.00 GiB" in disk.reason and "100.00 GiB free in data/melanoma/cache" in disk.reason
    memory = choose_cache("auto", need, where, free_disk=18 * GIB, available_ram=60 * GIB)
    assert memory.mode == "memory"
    assert "the 26.00 GiB cache would not fit the 18.00 GiB free in data/melanoma/cache" in memory.reason
    assert "60.00 GiB of available RAM" in memory.reason
    stream = choose_cache("auto", need, where, free_disk=18 * GIB, available_ram=30 * GIB)
    assert stream.mode == "none" and stream.reason.startswith("none (streaming): the 26.00 GiB cache would not fit")
    assert "30.00 GiB of available RAM" in stream.reason
    built = choose_cache("auto", need, where, free_disk=0, available_ram=0, built=True)
    assert built.mode == "disk" and "built already" in built.reason
    assert stream == CacheChoice("none", stream.reason, need)


def test_auto_keeps_the_disk_margin_of_the_cache_it_replaces():
    need = 100 * 1024 ** 2
    assert choose_cache("auto", need, Path("c"), int(need * 1.05), 0).mode == "disk"
    assert choose_cache("auto", need, Path("c"), int(need * 1.04), 0).mode == "none"
    assert choose_cache("auto", need, Path("c"), int(need * 1.04), 2 * need).mode == "memory"
    assert choose_cache("auto", need, Path("c"), int(need * 1.04), 2 * need - 2).mode == "none"


def test_explicit_modes_are_kept_and_memory_that_does_not_fit_is_refused():
    for mode in ("disk", "none"):
        chosen = choose_cache(mode, 26 * GIB, Path("c"), free_disk=0, available_ram=0)
        assert chosen.mode == mode and f"cache: {mode}" in chosen.reason
    assert choose_cache("memory", 10 * GIB, Path("c"), 0, 11 * GIB).mode == "memory"
    with pytest.raises(PodiumError) as caught:
        choose_cache("memory", 26 * GIB, Path("c"), free_disk=0, available_ram=20 * GIB)
    text = str(caught.value)
    assert "26.00 GiB of decoded pixels would not fit in memory" in text and "20.00 GiB available" in text
    assert "cache: none" in text
    with pytest.raises(PodiumError, match="Unknown cache mode 'ram'"):
        choose_cache("ram", 1, Path("c"), 0, 0)


def test_load_images_holds_each_mode_as_chosen_and_only_disk_writes(demo_rows, tmp_path):
    root, rows, cached = demo_rows
    need = cached.nbytes
    images, chosen = load_images(rows, root, SIZE, tmp_path / "none", "auto", False, free_disk=need, available_ram=0)
    assert chosen.mode == "none" and isinstance(images, StreamedRows)
    assert np.array_equal(images[[3, 1]], cached[[3, 1]])
    images, chosen = load_images(rows, root, SIZE, tmp_path / "memory", "auto", False, free_disk=0,
                                 available_ram=4 * need)
    assert chosen.mode == "memory" and type(images) is np.ndarray and not images.flags.writeable
    assert np.array_equal(images, cached)
    assert not (tmp_path / "none").exists() and not (tmp_path / "memory").exists()
    images, chosen = load_images(rows, root, SIZE, tmp_path / "disk", "auto", False, free_disk=2 * need,
                                 available_ram=0)
    assert chosen.mode == "disk" and isinstance(images, np.memmap) and np.array_equal(images, cached)
    again = load_images(rows, root, SIZE, tmp_path / "disk", "auto", False, free_disk=0, available_ram=0)[1]
    assert again.mode == "disk" and "built already" in again.reason
    with pytest.raises(PodiumError, match="would not fit in memory"):
        load_images(rows, root, SIZE, tmp_path / "x", "memory", False, free_disk=0, available_ram=need)


# ---- a file changed after indexing: the cache's error, while streaming ----------------------------------
def test_a_changed_or_deleted_file_while_streaming_is_the_cache_error(demo_rows, tmp_path):
    root, rows, _ = demo_rows
    own = Path(shutil.copytree(root, tmp_path / "own", ignore=shutil.ignore_patterns("cache")))
    streamed, _ = load_images(rows, own, SIZE, own / "cache", "none", False)
    with open(own / rows["path"][4], "ab") as handle:
        handle.write(b"tail")
    with pytest.raises(PodiumError) as streaming:
        streamed[[0, 4]]
    with pytest.raises(PodiumError) as caching:
        load_cached(rows, own, SIZE, tmp_path / "cache", progress=False)
    assert str(streaming.value) == str(caching.value)
    assert "changed since the index was built" in str(streaming.value) and "make data FORCE=1" in str(streaming.value)
    (own / rows["path"][9]).unlink()
    with pytest.raises(PodiumError, match="image files listed in the index are gone"):
        load_images(rows, own, SIZE, own / "cache", "none", False)  # all checked before the first batch


# ---- masks follow the images -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory) -> Path:
    raw = write_shapes_competition(tmp_path_factory.mktemp("raw"), n_train=12, n_test=4, size=32,
                                   file_size=(48, 40), seed=0, object_probability=0.75)
    data = tmp_path_factory.mktemp("data")
    make_data("shapes-segmentation", data_dir=str(data), source_dir=str(raw))
    return data


def test_segmentation_masks_are_held_like_the_images_with_the_same_bytes(shapes_data):
    task = get_task("segmentation")
    held = {}
    for mode in ("disk", "memory", "none"):
        cfg = ExperimentConfig(competition="shapes-segmentation", task="segmentation", data_dir=str(shapes_data),
                               image_size=32, cache=mode)
        held[mode] = load_labeled_data(cfg, task, progress=False)
        assert held[mode].cache.mode == mode
    assert isinstance(held["none"].images, StreamedRows) and isinstance(held["none"].targets, StreamedRows)
    assert type(held["memory"].targets) is np.ndarray and isinstance(held["disk"].targets, np.memmap)
    for mode in ("memory", "none"):
        assert np.array_equal(np.asarray(held[mode].images), held["disk"].images)
        assert np.array_equal(np.asarray(held[mode].targets), held["disk"].targets)
    assert np.asarray(held["disk"].targets).any()
