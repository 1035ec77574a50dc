"""Loading a file given as `weights=<path>` by what it holds, not by its name, and saying what is really wrong
when it cannot be loaded.

Keras 3 picks its loader from the file's name: `.weights.h5` for its own weights format, `.h5`/`.hdf5` for the
legacy (Keras 2) layout, `.keras` for a whole saved model. A file whose name and content disagree (Keras 3
weights copied as `x.h5`, a Keras 2 file named `x.weights.h5`) fails there with "Layer count mismatch" or
"expected 1 variables, but received 0", which reads like another backbone's weights. Here the content
decides (podium.models.checkpoint_files reads the signature, h5py the layout) and Keras' own loader for that
layout is reached through a link named as it wants. What cannot be loaded is named: a truncated file, a file
Keras did not write, the weights of a whole model rather than of a backbone, or the first layer whose shapes
differ, with both shapes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from podium.errors import PodiumError
from podium.lazy import LazyModule
from podium.models.checkpoint_files import HDF5, HDF5_SIGNATURE, ZIP, checkpoint_damage, damaged_checkpoint, \
    file_format, first_bytes

layers = LazyModule("podium.models.layers")  # imported on first use: keras, for .keras files only

if TYPE_CHECKING:
    import keras

KERAS3_WEIGHTS = "Keras 3 weights (model.save_weights('x.weights.h5'))"
LEGACY_WEIGHTS = "Keras 2 weights (legacy HDF5 layout)"
LEGACY_MODEL = "a whole Keras 2 model (legacy HDF5 model.save('x.h5'))"
KERAS_MODEL = "a whole Keras model (.keras zip)"
LOADER_NAME = {KERAS3_WEIGHTS: "weights.weights.h5", LEGACY_WEIGHTS: "weights.h5", LEGACY_MODEL: "weights.h5",
               KERAS_MODEL: "model.keras"}  # the name under which Keras reads each layout
SUB_MODEL = "backbone"  # the sub-model of a podium model whose weights a .keras file gives (backbones.BACKBONE_NAME)


class WeightsMismatch(Exception):
    """The file is a whole, readable Keras file, but its weights do not fit the model; str() says where."""


def weights_file_kind(path: Path) -> str:
    """Which of the four layouts Keras writes the file holds; "" when it is none of them."""
    kind = file_format(path)
    if kind == ZIP:
        try:
            with zipfile.ZipFile(path) as archive:
                return KERAS_MODEL if "config.json" in archive.namelist() else ""
        except (zipfile.BadZipFile, OSError):
            return ""
    if kind != HDF5:
        return ""
    import h5py

    with h5py.File(path, "r") as handle:
        if "layer_names" in handle.attrs:
            return LEGACY_WEIGHTS
        if "model_weights" in handle:
            return LEGACY_MODEL
        if "layers" in handle or "vars" in handle:
            return KERAS3_WEIGHTS
    return ""


def load_weights_file(model: keras.Model, path: Path) -> str:
    """Load `path` into `model` by its content; returns the layout it held. Raises PodiumError for a file that
    is damaged or not Keras', WeightsMismatch (naming the layer) for weights of another network."""
    path = Path(path)
    problem = checkpoint_damage(path)
    if problem and (file_format(path) or path.stat().st_size < len(HDF5_SIGNATURE)):  # cut short: not another net
        raise damaged_checkpoint(path, problem, fix="copy or download the weights file again (compare its size "
                                                    "with the original's)")
    kind = "" if problem else weights_file_kind(path)
    if not kind:
        raise PodiumError(f"Weights file {path} is not a file Keras wrote.",
                          expected="Keras weights (x.weights.h5, a legacy .h5/.hdf5) or a .keras model",
                          received=problem or _foreign_content(path),
                          fix="point weights= at the weights file itself (not a CSV, an image or a PyTorch "
                              ".pt/.pth file); save one with model.save_weights('x.weights.h5')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keras warns once per layer before raising on a mismatch
        if kind == KERAS_MODEL:
            _copy_from_saved_model(model, path)
        else:
            _load_as_named(model, path, kind)
    return kind


def _foreign_content(path: Path) -> str:
    if not file_format(path):
        return f"neither HDF5 nor a zip, the two formats Keras writes: it begins with {first_bytes(path)}"
    if file_format(path) == ZIP:
        return "a zip without config.json, so not a .keras model (a PyTorch .pt/.pth file is such a zip)"
    import h5py

    with h5py.File(path, "r") as handle:
        return f"an HDF5 file whose top level holds {sorted(handle.keys())[:8]}, none of Keras' layouts"


@contextlib.contextmanager
def _named_for_keras(path: Path, kind: str):
    """A link to `path` whose name makes Keras pick the loader for this layout (a copy where links fail)."""
    folder = Path(tempfile.mkdtemp(prefix="podium-weights-"))
    try:
        link = folder / LOADER_NAME[kind]
        try:
            os.symlink(path.resolve(), link)
        except OSError:
            shutil.copyfile(path, link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load_as_named(model: keras.Model, path: Path, kind: str) -> None:
    with _named_for_keras(path, kind) as link:
        try:
            model.load_weights(str(link))
        except (ValueError, KeyError, OSError, TypeError) as exc:
            raise WeightsMismatch(_mismatch_reason(exc, path, kind)) from exc


def _copy_from_saved_model(model: keras.Model, path: Path) -> None:
    """A podium model (.keras) carries its backbone as the sub-model "backbone"; take its weights. Any other
    saved model gives all its weights, which must match the backbone's one for one."""
    import keras

    layers.initialize()  # the weights of a podium .keras file need its Preprocess layer registered to load
    try:
        with _named_for_keras(path, KERAS_MODEL) as link:
            saved = keras.saving.load_model(link, compile=False)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise PodiumError(f"Weights file {path} is a .keras model that Keras cannot rebuild.",
                          expected="a .keras file saved by Keras 3 (e.g. a podium run's fold-<k>/best.keras)",
                          received=_first_line(exc),
                          fix="load it where it was made and save its backbone's weights: "
                              "model.get_layer('backbone').save_weights('x.weights.h5')") from exc
    has_backbone = any(layer.name == SUB_MODEL for layer in saved.layers)
    source = saved.get_layer(SUB_MODEL) if has_backbone else saved
    ours, theirs = model.weights, source.weights
    for mine, saved_weight in zip(ours, theirs):
        if tuple(mine.shape) != tuple(saved_weight.shape):
            raise WeightsMismatch(f"layer {_layer_of(mine.path)}'s {_variable_of(mine.path)} is "
                                  f"{tuple(mine.shape)} in this backbone but the file's {saved_weight.path} is "
                                  f"{tuple(saved_weight.shape)}")
    if len(ours) != len(theirs):
        whole = "" if has_backbone else (f"the whole model {saved.name!r} (no '{SUB_MODEL}' sub-model, so all its "
                                         f"weights, its top included): ")
        raise WeightsMismatch(f"{whole}the file holds {len(theirs)} weight arrays, this backbone has {len(ours)}")
    model.set_weights(source.get_weights())


def _mismatch_reason(exc: BaseException, path: Path, kind: str) -> str:
    """The layer and shapes behind Keras' mismatch message, or what the file holds instead."""
    text = str(exc)
    layer = re.search(r"object <(\w+) name=([^,>]+)", text)
    where = f"layer {layer.group(2)} ({layer.group(1)})" if layer else "a layer"
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if shapes:
        return f"{where} is {shapes.group(1)} in this backbone but {shapes.group(2)} in the file"
    nested = _nested_models(path) if kind == KERAS3_WEIGHTS else []
    if nested:
        return (f"the weights of a whole model (its top level holds {_top_layers(path)}, with the sub-model "
                f"{nested[0]!r}), not of a backbone alone")
    if re.search(r"expected \d+ variables, but received 0", text):
        return f"{where} finds no weights in the file, whose layers are {_top_layers(path)}"
    counts = re.search(r"Model expected (\d+) layers, found (\d+) saved layers", text)
    if counts:
        whole = f"{kind}: " if kind == LEGACY_MODEL else ""
        return f"{whole}this backbone has {counts.group(1)} layers with weights, the file {counts.group(2)}"
    return _first_line(exc)


def _top_layers(path: Path) -> list[str]:
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle.get("layers")
        return sorted(group.keys()) if group is not None else sorted(handle.attrs.get("layer_names", []))


def _nested_models(path: Path) -> list[str]:
    """Top-level layers of a Keras 3 weights file that hold layers of their own: sub-models."""
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle.get("layers")
        return [] if group is None else sorted(name for name in group if "layers" in group[name])


def _layer_of(variable_path: str) -> str:
    return variable_path.rsplit("/", 1)[0]


def _variable_of(variable_path: str) -> str:
    return variable_path.rsplit("/", 1)[-1]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
