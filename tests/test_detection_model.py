"""The detector (podium.models.detection): the centre heat target the loss builds, the loss on empty images
and on right and wrong maps, decoding, TTA views undone exactly, a .keras round trip, the same loss under
JAX, and a tiny detector that learns 8 images of rectangles."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

from podium.boxes import box_iou
from podium.config import load_config
from podium.errors import PodiumError
from podium.models import detection
from podium.training import orientation, runtime
from tests_support import run_under_jax

SIDE = 16  # cells of a 64 px image at stride 4
BOXES = np.array([[[0.10, 0.10, 0.40, 0.50, 1], [0.50, 0.50, 0.90, 0.70, 0], [-1, -1, -1, -1, -1]],
                  [[0.30, 0.20, 0.60, 0.35, 0], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]]], np.float32)


def perfect_maps(y_true: np.ndarray, side: int, num_classes: int) -> np.ndarray:
    """What a perfect detector would output: the loss's own heat target, and at each centre cell the exact
    distances to the box's sides."""
    heat, _ = detection.heat_target(keras.ops.convert_to_tensor(y_true), side, side, num_classes)
    maps = np.concatenate([np.asarray(keras.ops.convert_to_numpy(heat)),
                           np.full(heat.shape[:3] + (4,), 0.05, np.float32)], axis=-1)
    for image, rows in enumerate(y_true):
        for x1, y1, x2, y2, cls in rows[rows[:, 4] >= 0]:
            col, row = int((x1 + x2) / 2 * side), int((y1 + y2) / 2 * side)
            cx, cy = (col + 0.5) / side, (row + 0.5) / side
            maps[image, row, col, num_classes:] = [cx - x1, cy - y1, x2 - cx, y2 - cy]
    return maps


def loss_value(y_true, maps, num_classes=2, box_weight=1.0) -> float:
    return float(keras.ops.convert_to_numpy(detection.DetectionLoss(num_classes, box_weight)(y_true, maps)))


def test_the_heat_target_is_one_exactly_at_each_box_s_centre_cell_of_its_class():
    heat, positives = (np.asarray(keras.ops.convert_to_numpy(t)) for t in detection.heat_target(
        keras.ops.convert_to_tensor(BOXES), SIDE, SIDE, 2))
    assert heat.shape == positives.shape == (2, SIDE, SIDE, 2)
    centres = {(0, 4, 4, 1), (0, 9, 11, 0), (1, 4, 7, 0)}  # (image, row, col, class): floor(centre x 16)
    assert {tuple(map(int, cell)) for cell in np.argwhere(positives > 0)} == centres
    assert {tuple(map(int, cell)) for cell in np.argwhere(heat == 1.0)} == centres
    assert heat.max() == 1.0 and heat.min() >= 0.0
    assert heat[0, 5, 4, 1] > heat[0, 6, 4, 1] > 0  # falls off with distance from the centre (sigma 0.58 cell)
    assert heat[1, ..., 1].max() == 0.0  # image 1 has no class-1 box; padding rows add nothing


def test_the_loss_is_finite_on_images_without_boxes():
    empty = np.full((2, 3, 5), -1.0, np.float32)
    maps = np.random.default_rng(0).uniform(0.0, 1.0, (2, SIDE, SIDE, 6)).astype(np.float32)
    value = loss_value(empty, maps)
    assert np.isfinite(value) and value > 0
    assert loss_value(empty, np.zeros_like(maps)) == pytest.approx(0.0, abs=1e-6)  # nothing there, nothing said


def test_the_perfect_map_costs_less_than_the_same_map_one_cell_off():
    perfect = perfect_maps(BOXES, SIDE, 2)
    shifted = np.roll(perfect, 1, axis=2)
    assert loss_value(BOXES, perfect) < loss_value(BOXES, shifted)
    assert loss_value(BOXES, perfect, box_weight=1.0) == pytest.approx(loss_value(BOXES, perfect, box_weight=0.0),
                                                                       abs=1e-5)  # GIoU 1 at every centre


def test_decode_reads_the_boxes_back_by_score():
    maps = perfect_maps(BOXES, SIDE, 2)
    maps[0, 9, 11, 0] = 0.8  # the second box scores lower
    found = detection.decode(maps, max_boxes=10, min_score=0.5)
    assert [len(rows) for rows in found] == [2, 1]
    np.testing.assert_allclose(found[0], [[1, 1.0, 0.1, 0.1, 0.4, 0.5], [0, 0.8, 0.5, 0.5, 0.9, 0.7]], atol=1e-6)
    np.testing.assert_allclose(found[1], [[0, 1.0, 0.3, 0.2, 0.6, 0.35]], atol=1e-6)
    assert [len(rows) for rows in detection.decode(maps, max_boxes=1, min_score=0.5)] == [1, 1]
    assert detection.decode(maps, min_score=0.9)[0][:, 1].tolist() == [1.0]
    wide = maps.copy()
    wide[0, 4, 4, 2:] = 0.9  # distances past the border are clipped to the image
    assert detection.decode(wide, min_score=0.9)[0][0, 2:].tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("view", list(orientation.ORIENTATIONS))
def test_undo_view_gives_exactly_the_view_s_boxes_moved_back(view):
    rng = np.random.default_rng(3)
    maps = rng.uniform(0.0, 0.2, (2, SIDE, SIDE, 6)).astype(np.float32)
    maps[..., :2] = rng.permutation(2 * SIDE * SIDE * 2).reshape(2, SIDE, SIDE, 2) / (2 * SIDE * SIDE * 2)
    undone = detection.decode(detection.undo_view(view, maps), max_boxes=500, min_score=0.0)
    for back, seen in zip(undone, detection.decode(maps, max_boxes=500, min_score=0.0)):
        moved = np.asarray(keras.ops.convert_to_numpy(orientation.orient_boxes(seen[:, 2:],
                                                                               orientation.INVERSE[view])))
        np.testing.assert_array_equal(back[:, :2], seen[:, :2])  # the same peaks, classes and scores
        np.testing.assert_allclose(back[:, 2:], moved, atol=1e-6)


@pytest.mark.parametrize("view", list(orientation.ORIENTATIONS))
def test_a_perfect_map_of_a_turned_image_undoes_to_the_original_boxes(view):
    turned = BOXES.copy()
    turned[..., :4] = keras.ops.convert_to_numpy(orientation.orient_boxes(BOXES[..., :4], view))
    turned[BOXES[..., 4] < 0] = -1
    found = detection.decode(detection.undo_view(view, perfect_maps(turned, SIDE, 2)), min_score=0.5)
    for rows, truth in zip(found, BOXES):
        truth = truth[truth[:, 4] >= 0]
        order = np.lexsort(truth[:, :4].T)
        np.testing.assert_allclose(rows[np.lexsort(rows[:, 2:].T)][:, [0, 2, 3, 4, 5]],
                                   truth[order][:, [4, 0, 1, 2, 3]], atol=1e-6)


def test_shifts_and_zooms_are_refused_as_detection_views():
    with pytest.raises(PodiumError, match="cannot be undone"):
        detection.undo_view("shift_left", np.zeros((1, SIDE, SIDE, 6), np.float32))


def test_the_detector_outputs_heat_then_distances_at_stride_4_in_float32_under_mixed_precision():
    cfg = load_config(None, ["backbone=tiny_cnn", "image_size=64", "precision=mixed_bfloat16"])
    with runtime.training_context(cfg.precision):
        model = detection.build_detector(cfg, 3)
    assert model.output_shape == (None, 64 // detection.DETECTION_STRIDE, 64 // detection.DETECTION_STRIDE, 7)
    maps = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(np.full((2, 64, 64, 3), 99.0, "float32"))))
    assert maps.dtype == np.float32 and (maps[..., 3:] >= 0).all() and ((maps[..., :3] > 0) & (maps[..., :3] < 1)).all()
    bias = keras.ops.convert_to_numpy(model.get_layer("heat_logits").bias)
    np.testing.assert_allclose(bias, np.log(0.1 / 0.9), rtol=1e-5)  # prior 0.1, as CenterNet starts
    assert detection.detection_metrics(3) == []
    with pytest.raises(PodiumError, match="divisible"):
        detection.build_detector(load_config(None, ["backbone=tiny_cnn", "image_size=66"]), 3)


@pytest.mark.parametrize("backbone", ["resnet9", "airbench_s"])
def test_other_registry_backbones_reach_stride_4(backbone):
    model = detection.build_detector(load_config(None, [f"backbone={backbone}", "image_size=64"]), 2)
    assert model.output_shape == (None, 16, 16, 6) and model.name == f"podium_detector_{backbone}"


def test_a_saved_detector_loads_with_its_loss(tmp_path):
    model = detection.build_detector(load_config(None, ["backbone=tiny_cnn", "image_size=32"]), 2)
    model.compile(keras.optimizers.Adam(1e-3), loss=detection.DetectionLoss(2, box_weight=2.5))
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model.train_on_batch(images, BOXES)
    model.save(tmp_path / "detector.keras")
    loaded = keras.saving.load_model(tmp_path / "detector.keras")
    assert (loaded.loss.num_classes, loaded.loss.box_weight) == (2, 2.5)
    np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6)
    assert loaded.evaluate(images, BOXES, verbose=0) == pytest.approx(model.evaluate(images, BOXES, verbose=0),
                                                                      rel=1e-5)


JAX_LOSS = """
    import json
    import numpy as np
    import keras
    from podium.models.detection import DetectionLoss

    arrays = np.load({path!r})
    value = DetectionLoss(2, box_weight=1.5)(arrays["y_true"], arrays["maps"])
    print(json.dumps({{"backend": keras.backend.backend(), "loss": float(keras.ops.convert_to_numpy(value))}}))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install -e '.[jax]')")
def test_the_loss_is_the_same_under_jax(tmp_path):
    maps = np.random.default_rng(2).uniform(0.01, 0.3, (2, SIDE, SIDE, 6)).astype(np.float32)
    np.savez(tmp_path / "arrays.npz", y_true=BOXES, maps=maps)
    out = run_under_jax(JAX_LOSS.format(path=str(tmp_path / "arrays.npz")), tmp_path / "loss_under_jax.py")
    assert out["backend"] == "jax"
    assert out["loss"] == pytest.approx(loss_value(BOXES, maps, box_weight=1.5), rel=1e-5)


def rectangles(n: int, size: int, seed: int, most: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """n dark images with 1..most non-overlapping filled rectangles, red (class 0) or blue (class 1), and their
    padded box rows."""
    rng = np.random.default_rng(seed)
    images = np.full((n, size, size, 3), 20.0, np.float32)
    targets = np.full((n, most, 5), -1.0, np.float32)
    colours = np.array([[230, 40, 40], [40, 80, 230]], np.float32)
    for i in range(n):
        placed: list[tuple[int, int, int, int]] = []
        for j in range(rng.integers(1, most + 1)):
            for _ in range(100):
                w, h = (int(v) for v in rng.integers(10, 26, size=2))
                x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                if all(x + w <= a or a + c <= x or y + h <= b or b + e <= y for a, b, c, e in placed):
                    break
            else:
                continue
            placed.append((x, y, w, h))
            cls = int(rng.integers(0, 2))
            images[i, y:y + h, x:x + w] = colours[cls]
            targets[i, j] = [x / size, y / size, (x + w) / size, (y + h) / size, cls]
    return images, targets


def best_ious(found: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """Per true box, the best IoU of a found box of its class (0 when none)."""
    ious = []
    for rows, truth in zip(found, targets):
        for box in truth[truth[:, 4] >= 0]:
            same = rows[rows[:, 0] == box[4]]
            ious.append(box_iou(np.tile(box[:4], (len(same), 1)), same[:, 2:]).max() if len(same) else 0.0)
    return np.array(ious)


@pytest.mark.slow  # about 30 s on 2 busy cores
def test_a_tiny_detector_learns_eight_images_of_rectangles():
    keras.utils.set_random_seed(0)
    images, targets = rectangles(8, 64, seed=1)
    model = detection.build_detector(load_config(None, ["backbone=tiny_cnn", "image_size=64", "dropout=0"]), 2)
    model.compile(keras.optimizers.Adam(3e-3), loss=detection.DetectionLoss(2))
    history = model.fit(images, targets, batch_size=8, epochs=120, verbose=0).history["loss"]
    assert history[-1] < history[0] / 5
    found = detection.decode(model.predict(images, verbose=0), max_boxes=10, min_score=0.3)
    ious = best_ious(found, targets)
    assert (ious >= 0.5).mean() >= 0.8, ious  # measured: all 18 boxes, IoU 0.87..0.99 (seeds 0..3: every box)
