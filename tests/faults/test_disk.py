"""Disk full (ENOSPC) in every writer: a PodiumError naming the file, the space and the fix, sizes in a unit
that shows the number, no temp or staging file left behind, and the same command working once there is
space. Real full file systems: a small tmpfs (root) and /dev/full (anyone)."""

import errno
import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from podium.training.checkpoints import SafeBackupAndRestore
from podium.data.competitions import load_competition
from podium.data.cache import load_cached
from podium.data.extract import fetch
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import format_size, guarded_write, preallocate, write_fault
from tests_support import make_data
from small_disk import fill, leftovers, needs_mount, remount, small_disk

DEMO = Path(__file__).resolve().parents[2] / "src" / "podium" / "demo"


@pytest.mark.parametrize("size, shown", [(0, "0 bytes"), (900, "900 bytes"), (1536, "1.5 KiB"),
                                         (5 * 2**20, "5.0 MiB"), (3 * 2**30, "3.00 GiB")])
def test_sizes_are_printed_in_a_unit_that_shows_the_number(size, shown):
    assert format_size(size) == shown


def test_a_write_to_a_full_device_is_a_podium_error_naming_the_file():
    """/dev/full answers every write with ENOSPC: no root needed."""
    with pytest.raises(PodiumError) as caught:
        with guarded_write("/dev/full", needed=4096), open("/dev/full", "wb", buffering=0) as handle:
            handle.write(b"x" * 4096)
    text = str(caught.value)
    assert "disk is full" in text and "/dev/full" in text and "4.0 KiB free" in text
    assert "Fix: free some space" in text


def test_an_error_that_is_not_a_write_fault_passes_through():
    assert write_fault(FileNotFoundError(errno.ENOENT, "No such file", "x")) is None
    with pytest.raises(KeyError):
        with guarded_write("x"):
            raise KeyError("not a disk problem")


@needs_mount
def test_make_data_on_a_disk_too_small_refuses_before_unpacking_in_readable_units(tmp_path):
    data = tmp_path / "data"
    with small_disk(data, "4m"):  # the archives fit (2.5 MiB), their unpacked files do not
        with pytest.raises(PodiumError) as caught:
            make_data("demo", str(data))
        text = str(caught.value)
        assert "Not enough free disk space" in text and "0.00 GiB" not in text
        assert "MiB" in text or "KiB" in text
        assert leftovers(data) == []


@needs_mount
def test_make_data_filling_the_disk_mid_unpack_leaves_nothing_and_works_once_there_is_space(tmp_path):
    """The demo's 2,500 small files need one tmpfs page each (about 10 MiB), more than the 2 MiB the
    archives' sizes promise: the space check passes and the unpack itself hits ENOSPC."""
    data = tmp_path / "data"
    with small_disk(data, "6m"):
        with pytest.raises(PodiumError) as caught:
            make_data("demo", str(data))
        text = str(caught.value)
        assert "The disk is full" in text and str(data) in text and "free there" in text
        assert "run the same command again" in text
        assert leftovers(data) == [] and not (data / "demo").exists()
        remount(data, "size=32m")
        summary = make_data("demo", str(data))  # the same command, now with room
        assert summary.n_train == 2000 and summary.n_test == 500 and leftovers(data) == []


@needs_mount
def test_copying_sources_onto_a_full_disk_names_the_file_and_leaves_no_temp(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(DEMO, source)
    raw = tmp_path / "raw"
    with small_disk(raw, "1m"):
        filler = fill(raw)
        with pytest.raises(PodiumError) as caught:
            fetch(load_competition("demo"), raw / "demo", source)
        assert "disk is full" in str(caught.value) and "demo" in str(caught.value)
        assert [p for p in leftovers(raw)] == []
        filler.unlink()
        remount(raw, "size=8m")
        fetch(load_competition("demo"), raw / "demo", source)
        assert (raw / "demo" / "train.zip").read_bytes() == (DEMO / "train.zip").read_bytes()


@needs_mount
def test_the_image_cache_on_a_full_disk_is_refused_with_sizes(demo_data, tmp_path):
    root = demo_data / "demo"
    rows = load_index(root / "index.parquet")
    rows = rows[(rows["split"] == "train") & rows["ok"]].head(200)
    cache = tmp_path / "cache"
    with small_disk(cache, "256k"):
        with pytest.raises(PodiumError) as caught:
            load_cached(rows, root, 64, cache, progress=False)  # 200 x 64 x 64 x 3 = 2.3 MiB
        text = str(caught.value)
        assert "image cache" in text and "at least 2.5 MiB free" in text and "256.0 KiB free" in text
        assert leftovers(cache) == []


@needs_mount
def test_a_memmap_file_is_reserved_first_so_a_full_disk_is_an_error_not_a_sigbus(tmp_path):
    """Writing a memmap past a full tmpfs kills the process (SIGBUS); reserving the blocks first fails cleanly."""
    disk = tmp_path / "disk"
    with small_disk(disk, "256k"):
        with pytest.raises(PodiumError, match="disk is full.*cache.u8.*1.0 MiB free"):
            preallocate(disk / ".cache.u8.tmp", 2**20, disk / "cache.u8")


class FillDiskAtEpoch(keras.callbacks.Callback):
    def __init__(self, folder: Path, epoch: int):
        super().__init__()
        self.folder, self.epoch, self.filler = folder, epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.filler = fill(self.folder)


def _tiny_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@needs_mount
def test_a_full_disk_during_training_never_poisons_the_resume(tmp_path):
    """Epoch 1's backup cannot be written: a clear error; the epoch-0 backup survives whole, and the
    re-run (with space again) resumes from it instead of dying of HDF5 errors."""
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    disk = tmp_path / "fold"
    with small_disk(disk, "1m"):
        backup = disk / "backup"
        filler = FillDiskAtEpoch(disk, 1)
        with pytest.raises(PodiumError) as caught:
            _tiny_model().fit(x, y, epochs=4, verbose=0, callbacks=[SafeBackupAndRestore(backup), filler])
        assert "disk is full" in str(caught.value) and "latest.weights.h5" in str(caught.value)
        assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
        assert leftovers(disk) == []
        filler.filler.unlink()
        history = _tiny_model().fit(x, y, epochs=4, verbose=0, callbacks=[SafeBackupAndRestore(backup)])
        assert len(history.history["loss"]) == 3  # epochs 1, 2, 3: resumed after epoch 0
        assert not backup.exists()  # finished: Keras removes the backup


@needs_mount
def test_a_full_disk_while_saving_best_keras_keeps_the_previous_one_whole(tmp_path, capsys):
    from podium.training.checkpoints import SafeModelCheckpoint
    from podium.models.classifier import load_classifier

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    disk = tmp_path / "fold"
    with small_disk(disk, "2m"):
        best = disk / "best.keras"
        filler = FillDiskAtEpoch(disk, 1)
        checkpoint = SafeModelCheckpoint(best, monitor="loss", save_best_only=False, verbose=1)
        with pytest.raises(PodiumError, match="disk is full: writing .*best.keras"):
            _tiny_model().fit(x, y, epochs=3, verbose=0, callbacks=[checkpoint, filler])
        assert "Epoch 1: finished saving model to" in capsys.readouterr().out
        assert leftovers(disk) == []
        filler.filler.unlink()
        assert load_classifier(best, compile=False).count_params() > 0  # epoch 1's file, whole


def test_a_file_size_limit_is_named_as_such(tmp_path):
    """RLIMIT_FSIZE, for real, in a child process (no root needed): EFBIG, not a traceback."""
    import subprocess
    import sys

    script = ("import resource, signal, sys; sys.path.insert(0, sys.argv[2])\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
              "from podium.errors import PodiumError\nfrom podium.io import write_text\n"
              "try:\n    write_text(sys.argv[1], 'x' * 200_000)\nexcept PodiumError as exc:\n    print(exc)\n")
    target = tmp_path / "big.txt"
    done = subprocess.run([sys.executable, "-c", script, str(target), str(DEMO.parents[1])],
                          capture_output=True, text=True)
    assert "The file size limit is reached: writing" in done.stdout and "ulimit -f" in done.stdout, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temp file left


@needs_mount
def test_make_data_on_a_full_disk_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    from podium.cli.main import main

    data = tmp_path / "data"
    with small_disk(data, "6m"):
        assert main(["data", "--competition", "demo", "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: The disk is full: writing ") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1 and leftovers(data) == []
