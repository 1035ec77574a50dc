"""podium.models.checkpoint_files: a Keras file judged whole or damaged by its content, on files Keras really
wrote (a .keras zip and a .weights.h5) and on copies cut short, emptied or of another kind."""

import shutil

import keras
import pytest

from podium.errors import PodiumError
from podium.models.checkpoint_files import HDF5, ZIP, checkpoint_damage, damaged_checkpoint, file_format


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small model saved both ways Keras saves: the whole model (.keras zip) and its weights (HDF5)."""
    folder = tmp_path_factory.mktemp("saved")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.save(folder / "best.keras")
    model.save_weights(folder / "model.weights.h5")
    return folder


def _cut(source, target, keep):
    """A copy of `source` that keeps only its first `keep` bytes (a save a full disk or a kill cut short)."""
    target.write_bytes(source.read_bytes()[:keep])
    return target


def test_whole_files_are_told_by_their_first_bytes_not_their_names(saved, tmp_path):
    assert file_format(saved / "best.keras") == ZIP and file_format(saved / "model.weights.h5") == HDF5
    renamed = shutil.copy(saved / "model.weights.h5", tmp_path / "renamed.keras")
    assert file_format(renamed) == HDF5
    assert checkpoint_damage(saved / "best.keras") == "" and checkpoint_damage(saved / "model.weights.h5") == ""
    assert checkpoint_damage(renamed) == ""  # whole HDF5 under a .keras name: readable, not damaged
    assert file_format(tmp_path / "missing.keras") == ""


def test_files_cut_short_are_damaged_and_say_how(saved, tmp_path):
    zip_size = (saved / "best.keras").stat().st_size
    assert "truncated or damaged .keras zip" in checkpoint_damage(_cut(saved / "best.keras", tmp_path / "a.keras",
                                                                       zip_size // 2))
    h5_size = (saved / "model.weights.h5").stat().st_size
    assert "truncated or damaged HDF5" in checkpoint_damage(_cut(saved / "model.weights.h5", tmp_path / "w.h5",
                                                                 h5_size // 2))
    inside = checkpoint_damage(_cut(saved / "best.keras", tmp_path / "b.keras", 3))
    assert inside == "cut short after 3 bytes, inside the signature Keras' files begin with"
    (tmp_path / "empty.keras").touch()
    assert checkpoint_damage(tmp_path / "empty.keras") == "the file is empty (0 bytes): a copy or a save cut short"


def test_a_file_of_another_kind_is_damaged_only_under_a_keras_name(tmp_path):
    (tmp_path / "oof.keras").write_text("id,label\n1,cat\n")
    assert checkpoint_damage(tmp_path / "oof.keras") == (
        "neither HDF5 nor a zip, the two formats Keras writes: it begins with b'id,label\\n1,cat\\n'")
    (tmp_path / "oof.csv").write_text("id,label\n1,cat\n")
    assert checkpoint_damage(tmp_path / "oof.csv") == ""  # not a Keras name: nothing to judge


def test_the_error_names_the_file_its_size_and_the_fold_to_retrain(saved, tmp_path):
    fold = tmp_path / "fold-2"
    fold.mkdir()
    best = _cut(saved / "best.keras", fold / "best.keras", 2048)
    error = damaged_checkpoint(best, checkpoint_damage(best))
    assert isinstance(error, PodiumError)
    assert f"The checkpoint {best} is damaged (2.0 KiB on disk): a truncated or damaged .keras zip" in str(error)
    assert f"delete {fold}" in error.fix and "make train FORCE=1" in error.fix
    assert damaged_checkpoint(tmp_path / "gone.keras", "missing", fix="download it again").fix == "download it again"
    assert "(missing on disk)" in str(damaged_checkpoint(tmp_path / "gone.keras", "missing"))
