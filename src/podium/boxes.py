"""Box geometry in numpy: formats, IoU, the centre-box baseline.

Kept apart from the Keras model (podium.models.localization) so the index's targets, the box submission
writer and the blend read boxes without importing keras. Boxes are rows of four numbers in 0..1.
"""

from __future__ import annotations

import numpy as np

from podium.errors import PodiumError

BOX_FORMATS = ("xyxy", "xywh")


def to_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    boxes = np.asarray(boxes, np.float32)
    _check_format(box_format)
    if box_format == "xywh":
        return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    return boxes


def from_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    boxes = np.asarray(boxes, np.float32)
    _check_format(box_format)
    if box_format == "xywh":
        return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return boxes


def box_iou(true_boxes: np.ndarray, pred_boxes: np.ndarray) -> np.ndarray:
    """IoU per row of xyxy boxes: the same arithmetic as the model's metric (models.localization), in numpy."""
    true_boxes, pred_boxes = np.asarray(true_boxes, np.float32), np.asarray(pred_boxes, np.float32)
    tx1, ty1, tx2, ty2 = (true_boxes[:, k] for k in range(4))
    px1, py1, px2, py2 = (pred_boxes[:, k] for k in range(4))
    inter = np.maximum(np.minimum(tx2, px2) - np.maximum(tx1, px1), 0.0) * \
        np.maximum(np.minimum(ty2, py2) - np.maximum(ty1, py1), 0.0)
    union = (tx2 - tx1) * (ty2 - ty1) + (px2 - px1) * (py2 - py1) - inter
    return (inter / np.maximum(union, np.float32(1e-7))).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of every pair of xyxy boxes, float64; 0 where the union is empty (the detection
    metrics' matching, NMS and WBF)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area = lambda box: np.prod(box[:, 2:] - box[:, :2], axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def centre_box_baseline(true_boxes: np.ndarray) -> np.ndarray:
    """The box a model that learned nothing about position would give: the mean size, centred."""
    sizes = (true_boxes[:, 2:] - true_boxes[:, :2]).mean(0)
    centre = np.array([0.5, 0.5])
    return np.tile(np.concatenate([centre - sizes / 2, centre + sizes / 2]), (len(true_boxes), 1))


def _check_format(box_format: str) -> None:
    if box_format not in BOX_FORMATS:
        raise PodiumError(f"Unknown box format {box_format!r}.", expected=f"one of: {', '.join(BOX_FORMATS)}",
                          received=repr(box_format), fix="set box_format in the competition spec")
