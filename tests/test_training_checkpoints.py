"""podium.training.checkpoints: Keras files written through a temporary file and renamed into place, and a
damaged training backup reported as the damaged checkpoint it is, not as Keras' traceback."""

import json

import keras
import numpy as np
import pytest

from podium.errors import PodiumError
from podium.training import checkpoints


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_a_model_and_its_weights_are_saved_whole_with_nothing_left_beside(tmp_path):
    model = _model()
    saved = checkpoints.save_model_atomically(model, tmp_path / "best.keras")
    again = keras.models.load_model(saved)
    np.testing.assert_allclose(again.get_layer("dense").get_weights()[0], model.get_layer("dense").get_weights()[0])
    weights = checkpoints.save_model_atomically(model, tmp_path / "w.weights.h5", weights_only=True)
    other = _model()
    other.load_weights(weights)
    np.testing.assert_allclose(other.get_layer("dense").get_weights()[0], model.get_layer("dense").get_weights()[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "w.weights.h5"]


def test_the_backup_callback_saves_marked_and_a_damaged_one_is_named(tmp_path):
    x, y = np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")
    backup = tmp_path / "backup"
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[checkpoints.SafeBackupAndRestore(str(backup),
                                                                                         delete_checkpoint=False)])
    assert (backup / ".podium-made").is_file()
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1  # one epoch done: resume at the second
    (backup / "training_metadata.json").write_text("{not json")
    with pytest.raises(PodiumError, match="is damaged") as caught:
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[checkpoints.SafeBackupAndRestore(str(backup))])
    assert "training_metadata.json" in str(caught.value)
