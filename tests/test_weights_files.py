"""weights=<path>: a file is loaded by what it holds, and one that cannot be loaded is named for what is wrong
with it (issue 21, class 6), never "does not fit backbone" unless the weights really are another network's.

Every file here is written by Keras (or cut short, renamed, or written by h5py as another program would)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format  # writes the Keras 2 layout, which Keras 3 still reads

from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.models import weights_files
from podium.models.backbones import build_backbone
from podium.models.classifier import build_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny_cnn backbone and its weights saved by Keras 3 (x.weights.h5)."""
    folder = tmp_path_factory.mktemp("weights")
    model = build_backbone("tiny_cnn", 32, "none")
    path = folder / "tiny.weights.h5"
    model.save_weights(path)
    return model, path


def assert_loaded(original: keras.Model, path: Path) -> None:
    loaded = build_backbone("tiny_cnn", 32, str(path))  # random init differs: equal weights mean loaded ones
    for saved, restored in zip(original.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)


def error_of(path: Path, backbone: str = "tiny_cnn") -> str:
    with pytest.raises(PodiumError) as caught:
        build_backbone(backbone, 32, str(path))
    return str(caught.value)


@pytest.mark.parametrize("name", ["tiny.h5", "tiny.hdf5", "tiny.keras", "tiny.bin"])
def test_keras3_weights_under_another_name_load_by_content(tiny, tmp_path, name):
    """Keras picks its loader by the name: Keras 3 weights copied as x.h5 failed with 'Layer count mismatch'."""
    model, path = tiny
    renamed = tmp_path / name
    shutil.copyfile(path, renamed)
    assert weights_files.weights_file_kind(renamed) == weights_files.KERAS3_WEIGHTS
    assert_loaded(model, renamed)


@pytest.mark.parametrize("name", ["legacy.h5", "legacy.hdf5", "legacy.weights.h5"])
def test_keras2_weights_load_whatever_their_name(tiny, tmp_path, name):
    model, _ = tiny
    path = tmp_path / name
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    assert weights_files.weights_file_kind(path) == weights_files.LEGACY_WEIGHTS
    assert_loaded(model, path)


def test_a_keras_model_renamed_h5_gives_its_weights(tiny, tmp_path):
    model, _ = tiny
    saved = tmp_path / "bare.keras"
    model.save(saved)
    renamed = tmp_path / "bare.h5"
    shutil.copyfile(saved, renamed)
    assert weights_files.weights_file_kind(renamed) == weights_files.KERAS_MODEL
    assert_loaded(model, renamed)


def test_a_keras2_style_whole_model_h5_gives_its_weights(tiny, tmp_path):
    """model.save('x.h5'): the legacy whole-model layout, whose model_weights group Keras' legacy loader reads."""
    model, _ = tiny
    path = tmp_path / "whole.h5"
    model.save(path)  # keras logs that the .h5 model format is legacy
    assert weights_files.weights_file_kind(path) == weights_files.LEGACY_MODEL
    assert_loaded(model, path)


@pytest.mark.parametrize("name", ["cut.weights.h5", "cut.hdf5", "cut.keras"])
def test_a_truncated_file_is_named_damaged_not_another_backbone(tiny, tmp_path, name):
    model, path = tiny
    source = path
    if name.endswith(".keras"):
        source = tmp_path / "whole.keras"
        model.save(source)
    data = source.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    message = error_of(cut)
    assert f"The checkpoint {cut} is damaged" in message and "truncated or damaged" in message
    assert "does not fit" not in message and "copy or download the weights file again" in message


def test_an_empty_file_or_one_cut_inside_the_signature_is_named_damaged(tiny, tmp_path):
    empty = tmp_path / "empty.weights.h5"
    empty.write_bytes(b"")
    message = error_of(empty)
    assert "is damaged" in message and "empty (0 bytes)" in message and "does not fit" not in message
    stub = tmp_path / "stub.h5"
    stub.write_bytes(tiny[1].read_bytes()[:5])
    message = error_of(stub)
    assert "is damaged" in message and "cut short after 5 bytes" in message


@pytest.mark.parametrize("name, content", [("labels.h5", b"id,label\n1,cat\n"),
                                           ("photo.weights.h5", b"\xff\xd8\xff\xe0 JFIF")])
def test_a_file_that_is_not_keras_is_named_so(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    message = error_of(path)
    assert "is not a file Keras wrote" in message and "neither HDF5 nor a zip" in message
    assert repr(content[:8])[:-1] in message and "does not fit" not in message


def test_an_hdf5_file_keras_did_not_write_is_named_so(tmp_path):
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as handle:
        handle["measurements"] = np.arange(4)
    message = error_of(path)
    assert "is not a file Keras wrote" in message and "'measurements'" in message


def test_a_zip_that_is_not_a_keras_model_is_named_so(tmp_path):
    import zipfile

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"torch")
    message = error_of(path)
    assert "not a .keras model" in message and "PyTorch" in message


def test_another_backbones_weights_name_the_layer_and_both_shapes(tmp_path):
    path = tmp_path / "resnet9.weights.h5"
    build_backbone("resnet9", 32, "none").save_weights(path)
    message = error_of(path)
    assert "does not fit backbone tiny_cnn" in message
    assert "layer block1_conv (Conv2D) is (3, 3, 3, 32) in this backbone but (3, 3, 3, 64) in the file" in message


def test_a_whole_classifiers_weights_are_named_a_whole_model(tmp_path):
    path = tmp_path / "classifier.weights.h5"
    build_classifier(ExperimentConfig(backbone="tiny_cnn", image_size=32), 3).save_weights(path)
    message = error_of(path)
    assert "the weights of a whole model" in message and "not of a backbone alone" in message


def test_weights_of_an_unrelated_network_say_what_the_file_holds(tmp_path):
    path = tmp_path / "dense.weights.h5"
    keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="head")]).save_weights(path)
    message = error_of(path)
    assert "layer block1_conv (Conv2D) finds no weights in the file, whose layers are ['dense']" in message


def test_a_whole_keras_model_without_a_backbone_says_so(tmp_path):
    path = tmp_path / "other.keras"
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(32, 3, use_bias=False)(inputs)))
    keras.Model(inputs, outputs, name="someone_elses").save(path)
    message = error_of(path)
    assert "does not fit backbone tiny_cnn" in message
    assert "is (32,) in this backbone but the file's" in message  # block1_bn's gamma vs the Dense kernel


def test_a_whole_model_with_fewer_weights_says_it_has_no_backbone(tiny, tmp_path):
    model, _ = tiny
    path = tmp_path / "short.keras"
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Conv2D(32, 3, use_bias=False)(inputs), name="stem_only").save(path)
    message = error_of(path)
    assert "the whole model 'stem_only' (no 'backbone' sub-model" in message
    assert f"the file holds 1 weight arrays, this backbone has {len(model.weights)}" in message
