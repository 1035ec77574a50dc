"""Keras checkpoint callbacks whose files are never half-written: best.keras and the resume backup.

Keras writes both in place, so a full disk or a kill mid-save leaves a truncated file: the next run's
resume dies of HDF5 errors and the predictor reads "File not found". Here every save goes to a temp file
beside the target and is renamed over it (podium.io.atomic_path), so the previous good file survives a
cut write; a full disk is a PodiumError naming the file and the space. A backup that is damaged anyway
(an older podium, a failing disk) is named, with its size and the fix, instead of an HDF5 traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from podium.io import atomic_path, write_text
from podium.models.checkpoint_files import damaged_checkpoint
from podium.paths import mark_made


def save_model_atomically(model: keras.Model, path: str | Path, weights_only: bool = False) -> Path:
    """model.save / save_weights through a temp file with the same extension, renamed into place."""
    path = Path(path)
    suffix = ".weights.h5" if weights_only else path.suffix
    with atomic_path(path, suffix=suffix) as tmp:
        if weights_only:
            model.save_weights(tmp, overwrite=True)
        else:
            model.save(tmp, overwrite=True)
    return path


class SafeModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """keras.callbacks.ModelCheckpoint whose save replaces the file atomically."""

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):  # also updates self.best
            save_model_atomically(self.model, filepath, self.save_weights_only)
            if self.verbose > 0:  # as Keras' own ModelCheckpoint reports it
                print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """keras.callbacks.BackupAndRestore with atomic saves (weights first, then the epoch they belong to)
    and a damaged backup reported as such on resume."""

    def _save_model(self):
        mark_made(self.backup_dir, "the training backup", adopt=True)  # so _clear_fold_dir may delete it
        save_model_atomically(self.model, self._weights_path, weights_only=True)
        write_text(self._training_metadata_path,
                   json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except (OSError, ValueError, KeyError) as exc:  # h5py: OSError "truncated file"; json: ValueError
            if not self.model.built:
                raise
            raise damaged_checkpoint(self._damaged_file(exc), f"the training backup cannot be read "
                                                              f"({type(exc).__name__}: {exc})") from exc

    def _damaged_file(self, exc: Exception) -> Path:
        weights, metadata = Path(self._weights_path), Path(self._training_metadata_path)
        if metadata.is_file():
            try:
                json.loads(metadata.read_text())["epoch"]
            except (OSError, ValueError, KeyError, TypeError):
                return metadata
        return weights if weights.exists() else Path(self.backup_dir)
