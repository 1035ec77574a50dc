"""TTA views on real demo JPEGs: each view is a distinct, deterministic transform that moves content the
way its name says, and predict_tta averages them without reordering rows."""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from podium.training import tta
from podium.errors import PodiumError

DEMO_TRAIN = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
SIZE = 32
SHIFT = tta.shift_pixels(SIZE)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """32 real 32x32 JPEGs spread over the demo's classes, float32 0..255 (32, 32, 32, 3)."""
    with zipfile.ZipFile(DEMO_TRAIN) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".jpg"))[::60][:32]
        decoded = [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")) for n in names]
    return np.stack(decoded).astype("float32")


def view(name: str, batch: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(tta.apply_view(name, batch))


@pytest.fixture(scope="module")
def left_half_brightness_model() -> keras.Model:
    """Probabilities [m, 1-m], m = mean brightness of the image's left half: sensitive to order and flips."""
    inputs = keras.Input((SIZE, SIZE, 3))
    left = keras.layers.Cropping2D(((0, 0), (0, SIZE // 2)))(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(left)
    dense = keras.layers.Dense(2)
    outputs = dense(pooled)
    dense.set_weights([np.array([[1.0, -1.0]] * 3, "float32") / 765.0, np.array([0.0, 1.0], "float32")])
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("name", tta.view_names())
def test_every_view_keeps_shape_and_dtype(name, images):
    out = view(name, images)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= -1e-3 and out.max() <= 255.0 + 1e-3


@pytest.mark.parametrize("first,second", list(itertools.combinations(tta.view_names(), 2)))
def test_every_pair_of_views_gives_different_images(first, second, images):
    difference = np.abs(view(first, images) - view(second, images)).mean()
    assert difference > 1.0, f"views {first} and {second} are (nearly) the same transform"


def test_views_are_deterministic(images):
    for name in tta.view_names():
        np.testing.assert_array_equal(view(name, images), view(name, images))


def test_hflip_twice_is_identity(images):
    np.testing.assert_array_equal(view("hflip", view("hflip", images)), images)
    np.testing.assert_array_equal(view("hflip", images), images[:, :, ::-1])


@pytest.mark.parametrize("name,axis,step", [("shift_left", 2, -SHIFT), ("shift_right", 2, SHIFT),
                                            ("shift_up", 1, -SHIFT), ("shift_down", 1, SHIFT)])
def test_shift_views_move_a_marker_the_named_way(name, axis, step):
    marker_at = SIZE // 2
    canvas = np.zeros((1, SIZE, SIZE, 3), "float32")
    index = [slice(None)] * 4
    index[axis] = marker_at
    canvas[tuple(index)] = 255.0
    profile = view(name, canvas).max(axis=(0, 3, 2 if axis == 1 else 1))
    assert np.flatnonzero(profile).tolist() == [marker_at + step]


def test_shift_right_keeps_real_content_and_fills_by_reflection(images):
    shifted = view("shift_right", images)
    np.testing.assert_array_equal(shifted[:, :, SHIFT:], images[:, :, :-SHIFT])
    np.testing.assert_array_equal(shifted[:, :, :SHIFT], images[:, :, SHIFT:0:-1])


def test_zoom_in_magnifies_and_zoom_out_shrinks_a_centred_square():
    canvas = np.zeros((1, SIZE, SIZE, 3), "float32")
    canvas[:, 12:20, 12:20] = 255.0
    area = {name: int((view(name, canvas) > 127).any(axis=-1).sum()) for name in ("identity", "zoom_in", "zoom_out")}
    assert area["zoom_in"] > area["identity"] > area["zoom_out"] > 0


def test_predict_tta_keeps_input_order_under_a_permutation(images, left_half_brightness_model):
    views = ["identity", "hflip", "shift_left", "zoom_in"]
    batches = [images[i:i + 8] for i in range(0, len(images), 8)]
    mean, per_view = tta.predict_tta(left_half_brightness_model, batches, views)
    order = np.random.default_rng(0).permutation(len(images))
    permuted = [images[order][i:i + 8] for i in range(0, len(images), 8)]
    permuted_mean, permuted_per_view = tta.predict_tta(left_half_brightness_model, permuted, views)
    np.testing.assert_allclose(permuted_mean, mean[order], atol=1e-6)
    for name in views:
        np.testing.assert_allclose(permuted_per_view[name], per_view[name][order], atol=1e-6)


def test_predict_tta_outputs_are_the_model_on_each_view_and_their_mean(images, left_half_brightness_model):
    views = ["identity", "hflip", "shift_down"]
    mean, per_view = tta.predict_tta(left_half_brightness_model, [(images[:16], None), (images[16:], None)], views)
    left_mean = images[:, :, : SIZE // 2].mean(axis=(1, 2, 3)) / 255.0
    right_mean = images[:, :, SIZE // 2:].mean(axis=(1, 2, 3)) / 255.0
    np.testing.assert_allclose(per_view["identity"][:, 0], left_mean, atol=1e-4)
    np.testing.assert_allclose(per_view["hflip"][:, 0], right_mean, atol=1e-4)
    np.testing.assert_allclose(mean, np.mean([per_view[v] for v in views], axis=0), atol=1e-6)
    assert mean.shape == (len(images), 2) and set(per_view) == set(views)


def test_predict_tta_iterates_a_keras_py_dataset_in_order(images, left_half_brightness_model):
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return images[index * 8:(index + 1) * 8], np.zeros((8, 2), "float32")

    from_dataset, _ = tta.predict_tta(left_half_brightness_model, Batches(), ["identity"])
    from_arrays, _ = tta.predict_tta(left_half_brightness_model, [images], ["identity"])
    np.testing.assert_allclose(from_dataset, from_arrays, atol=1e-6)


def test_unknown_or_missing_views_and_empty_input_raise_podium_error(images, left_half_brightness_model):
    with pytest.raises(PodiumError) as unknown:
        tta.predict_tta(left_half_brightness_model, [images], ["identity", "upside_down"])
    assert "upside_down" in unknown.value.received and "vflip" in unknown.value.expected
    with pytest.raises(PodiumError):
        tta.apply_view("rotate90", images)
    with pytest.raises(PodiumError):
        tta.predict_tta(left_half_brightness_model, [images], [])
    with pytest.raises(PodiumError, match="no batches"):
        tta.predict_tta(left_half_brightness_model, [], ["identity"])


# ---- flips, quarter turns and the transpose (top-down images; podium.training.orientation) ----------------
NUMPY_OF = {"vflip": lambda x: x[:, ::-1], "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
            "rot180": lambda x: np.rot90(x, 2, axes=(1, 2)), "rot270": lambda x: np.rot90(x, 3, axes=(1, 2)),
            "transpose": lambda x: np.transpose(x, (0, 2, 1, 3)), "hflip": lambda x: x[:, :, ::-1]}


@pytest.mark.parametrize("name", sorted(NUMPY_OF))
def test_orientation_views_are_numpy_s_flips_turns_and_transpose(name, images):
    np.testing.assert_array_equal(view(name, images), NUMPY_OF[name](images))


@pytest.mark.parametrize("name", sorted(tta.UNDO))
def test_every_undoable_view_then_its_undo_is_the_identity_on_a_real_batch(name, images):
    """The mask-sized prediction made on view `name` goes back onto the original pixels: exactly for flips,
    turns and the transpose; for a shift, all but the band its reflect padding made up."""
    back = tta.undo_view(name, view(name, images))
    inner = slice(SHIFT, SIZE - SHIFT) if name.startswith("shift") else slice(None)
    np.testing.assert_array_equal(back[:, inner, inner], images[:, inner, inner])
    if name != "identity":
        assert np.abs(view(name, images) - images).mean() > 1.0, f"{name} left the batch as it was"


def test_a_quarter_turn_is_undone_by_the_opposite_one_not_by_itself(images):
    turned = view("rot90", images)
    assert np.abs(tta.undo_view("rot90", turned) - images).max() == 0
    assert np.abs(view("rot90", turned) - images).mean() > 1.0  # rot90 twice is rot180, not identity


def test_orientation_views_refused_for_a_zoom_on_a_mask_still(images):
    with pytest.raises(PodiumError, match="cannot be undone on a mask") as caught:
        tta.undo_view("zoom_in", images)
    assert "rot90" in caught.value.expected
