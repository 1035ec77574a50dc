"""What a killed process (kill -9, a power cut) leaves behind: temp files, a staging folder, a checkpoint cut
short. The next run of the same stage cleans what the dead process left (never a live writer's file), and a
cut-short checkpoint is named as damaged, with its size and the fix, instead of "File not found"."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from podium.tasks import get_task
from podium.training.checkpoints import SafeBackupAndRestore
from podium.data.competitions import load_competition
from podium.data.extract import extract, fetch
from podium.errors import PodiumError
from podium.io import write_text
from podium.models.classifier import load_classifier
from podium.runners.train import train_and_evaluate
from tests_support import stop_after_epoch

SRC = Path(__file__).resolve().parents[2] / "src"
DEMO = SRC / "podium" / "demo"

WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from podium.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    print(tmp, flush=True)
    time.sleep(3600)
"""


def _writer_in_the_middle(target: Path) -> tuple[subprocess.Popen, Path]:
    """A real process that has half-written target's temp file and is still running."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(SRC)], stdout=subprocess.PIPE,
                               text=True)
    line = process.stdout.readline().strip()
    assert line, "the writer process died before writing"
    return process, Path(line)


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()  # reaped: its pid is free


def test_a_temp_file_of_a_killed_writer_is_removed_by_the_next_write_but_a_live_one_is_kept(tmp_path):
    target = tmp_path / "run" / "test_predictions.npy"
    killed, killed_tmp = _writer_in_the_middle(target)
    _kill(killed)
    assert killed_tmp.name.startswith(".test_predictions.npy.") and killed_tmp.is_file()  # the leftover
    alive, alive_tmp = _writer_in_the_middle(target)  # the next run of the same stage...
    try:
        assert not killed_tmp.exists()  # ...removed the dead writer's file
        write_text(target, "the finished file")
        assert alive_tmp.is_file()  # a writer still at work: left alone
        assert target.read_text() == "the finished file"
    finally:
        _kill(alive)
    write_text(target, "again")
    assert sorted(p.name for p in target.parent.iterdir()) == ["test_predictions.npy"]


def test_make_data_cleans_a_killed_copy_of_train_zip_and_older_podiums_fixed_temp(tmp_path):
    raw = tmp_path / "raw" / "demo"
    raw.mkdir(parents=True)
    (raw / ".train.zip.tmp").write_bytes(b"left by an older podium")
    killed, _ = _writer_in_the_middle(raw / "train.zip")
    _kill(killed)
    files = fetch(load_competition("demo"), raw, DEMO)
    assert sorted(p.name for p in raw.iterdir()) == ["sample_submission.csv", "test.zip", "train.zip"]
    assert [p.name for p in files] == ["sample_submission.csv", "test.zip", "train.zip"]
    assert (raw / "train.zip").read_bytes() == (DEMO / "train.zip").read_bytes()


def test_a_staging_folder_of_a_killed_unpack_is_replaced_not_trusted(tmp_path):
    spec = load_competition("demo")
    raw, root = tmp_path / "raw" / "demo", tmp_path / "demo"
    fetch(spec, raw)
    staging = tmp_path / ".demo.partial"
    (staging / "train" / "airplane").mkdir(parents=True)
    (staging / "train" / "airplane" / "0001.jpg").write_bytes(b"half")
    assert extract(spec, raw, root) is True
    assert not staging.exists()
    assert len(list((root / "train").rglob("*.jpg"))) == 2000
    assert (root / "train" / "airplane" / "0001.jpg").stat().st_size > 100


def _saved_model(path: Path) -> Path:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32), keras.layers.Dense(2)])
    model.save(path)
    return path


def test_a_truncated_best_keras_is_named_damaged_with_its_size_and_the_fix(tmp_path):
    (tmp_path / "fold-0").mkdir()
    path = _saved_model(tmp_path / "fold-0" / "best.keras")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PodiumError) as caught:
        load_classifier(path)
    text = str(caught.value)
    assert f"The checkpoint {path} is damaged" in text and "KiB on disk" in text
    assert "File not found" not in text
    assert f"delete {path.parent}" in text and "FORCE=1" in text


def test_a_checkpoint_with_a_corrupt_member_is_named_damaged(tmp_path):
    path = _saved_model(tmp_path / "best.keras")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PodiumError, match="is damaged"):
        load_classifier(path)


def _fit(backup: Path, epochs: int, *callbacks):
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, (x[:, 0] > 0).astype("int32"), epochs=epochs, verbose=0,
                     callbacks=[SafeBackupAndRestore(backup), *callbacks])


@pytest.mark.parametrize("damaged", ["latest.weights.h5", "training_metadata.json"])
def test_a_cut_short_backup_file_is_named_not_an_hdf5_traceback(tmp_path, damaged):
    backup = tmp_path / "fold-0" / "backup"
    with pytest.raises(KeyboardInterrupt):
        _fit(backup, 3, stop_after_epoch(0))
    path = backup / damaged
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PodiumError) as caught:
        _fit(backup, 3)
    assert f"The checkpoint {path} is damaged" in str(caught.value) and f"delete {backup}" in str(caught.value)


@pytest.mark.slow
def test_a_damaged_training_backup_is_named_and_the_named_fix_resumes_training(tiny, tmp_path):
    """A backup cut short (an older podium, a failing disk): not an HDF5 traceback, but the file, its size
    and the fix; applying the fix (delete the backup folder) retrains that fold."""
    cfg = tiny.cfg(tmp_path, "epochs=3")
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[stop_after_epoch(0)])
    weights = cfg.run_dir / "fold-0" / "backup" / "latest.weights.h5"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PodiumError) as caught:
        train_and_evaluate(cfg, get_task(cfg.task), 0)
    text = str(caught.value)
    assert f"The checkpoint {weights} is damaged" in text and "the training backup cannot be read" in text
    assert f"delete {weights.parent}" in text
    shutil.rmtree(weights.parent)  # the fix, as the message gives it
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.epochs_run == 3
    assert pd.read_csv(result.fold_dir / "history.csv")["epoch"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("name", ["backbone.weights.h5", "model.keras"])
def test_a_cut_short_weights_file_is_damaged_not_made_for_another_backbone(tmp_path, name):
    from podium.models.backbones import build_backbone

    path = tmp_path / name
    backbone = build_backbone("tiny_cnn", 32, "none")
    backbone.save_weights(path) if name.endswith(".weights.h5") else backbone.save(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(PodiumError) as caught:
        build_backbone("tiny_cnn", 32, str(path))
    text = str(caught.value)
    assert f"The checkpoint {path} is damaged" in text and "does not fit" not in text
    assert "copy or download the weights file again" in text
