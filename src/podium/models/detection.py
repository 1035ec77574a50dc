"""Object detection: an anchor-free, CenterNet-style head (many boxes of several classes per image).

The model returns one float32 map (B, S/4, S/4, C + 4): per class the sigmoid "a box is centred in this
cell" heat, then the distances (left, top, right, bottom) from the cell's centre to the box's sides in
fractions of the image side (TTFNet/FCOS's ltrb). One dense output keeps the training loop, checkpoints and
TTA/fold averaging the ones segmentation uses; boxes are read off it only at the end (decode). The centre
heat target is built inside the loss from the padded box rows, so the data pipeline carries (M, 5) rows per
image and not a map per class, and the box flips and turns of augmentation need no map of their own.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from podium.errors import PodiumError
from podium.models.localization import box_iou_and_giou
from podium.models.segmentation import encoder_on_input
from podium.training import orientation

DETECTION_STRIDE = 4
HEAT_PRIOR = 0.1  # the heat logits start at sigmoid^-1(0.1) = -2.19 (CenterNet, the focal loss paper)
DISTANCE_SCALE = 0.125  # softplus(0) x 0.125 = 0.087: a starting box about a sixth of the image wide
MIN_HEAD_FILTERS = 64  # CenterNet's head width
SIGMA_PER_SIZE = 0.54 / 6  # TTFNet's Gaussian: sigma = 0.54 x box side / 6, in cells, per axis
MIN_SIGMA = 1 / 6  # CenterNet's smallest Gaussian (radius 0)
OVERLAP_POWER = 8.0
LOG_FLOOR = 1e-12  # boxes' Gaussians merge as a p-norm: near their max, yet separable per axis
# the ltrb channels' order after each step of an orientation (transpose, flip rows, flip columns)
_LTRB_AFTER = ((1, 0, 3, 2), (0, 3, 2, 1), (2, 1, 0, 3))


def build_detector(cfg, num_classes: int) -> keras.Model:
    """Backbone features merged FPN-style down to stride 4, then a heat head and an ltrb head."""
    size = cfg.resolved_image_size
    if num_classes < 1 or size % DETECTION_STRIDE:
        raise PodiumError("The detector needs classes and an image size divisible by its stride.",
                          expected=f"num_classes >= 1, image_size divisible by {DETECTION_STRIDE}",
                          received=f"num_classes={num_classes}, image_size={size}",
                          fix="set image_size to a multiple of 32 (e.g. 256, 512, 1024)")
    width = max(cfg.unet_filters, MIN_HEAD_FILTERS)
    inputs, skips = encoder_on_input(cfg)
    x = stride4_features(skips, size // DETECTION_STRIDE, width)
    x = layers.Dropout(cfg.dropout, name="head_dropout")(x)
    heat_logits = _head(x, width, num_classes, "heat", -math.log((1 - HEAT_PRIOR) / HEAT_PRIOR))
    heat = layers.Activation("sigmoid", dtype="float32", name="heat")(heat_logits)
    distances = layers.Activation("softplus", dtype="float32", name="ltrb_softplus")(_head(x, width, 4, "ltrb", 0.0))
    ltrb = layers.Rescaling(DISTANCE_SCALE, dtype="float32", name="ltrb")(distances)
    outputs = layers.Concatenate(dtype="float32", name="detections")([heat, ltrb])  # float32 under mixed precision
    return keras.Model(inputs, outputs, name=f"podium_detector_{cfg.backbone}")


def stride4_features(skips: list, side: int, width: int):
    """The encoder's maps at stride >= 4, merged top-down (FPN: upsample, add a 1x1 lateral, 3x3 conv) to one
    (side, side, width) map; upsampled further when the backbone's finest kept map is coarser than that."""
    usable = [skip for skip in skips if int(skip.shape[1]) <= side]
    if not usable:
        raise PodiumError("The backbone never reaches the detector's stride.",
                          expected=f"a feature map at 1/{DETECTION_STRIDE} of the image or coarser",
                          received=", ".join(str(skip.shape[1]) for skip in skips), fix="pick another backbone")
    x = layers.Conv2D(width, 1, name=f"lateral_{usable[-1].shape[1]}")(usable[-1])
    for skip in reversed(usable[:-1]):
        resolution = int(skip.shape[1])
        x = layers.UpSampling2D(resolution // int(x.shape[1]), interpolation="bilinear",
                                name=f"neck_upsample_{resolution}")(x)
        x = layers.Add(name=f"neck_add_{resolution}")([x, layers.Conv2D(width, 1, name=f"lateral_{resolution}")(skip)])
        x = _conv_bn_relu(x, width, f"neck_{resolution}")
    while int(x.shape[1]) < side:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"neck_upsample_{2 * int(x.shape[1])}")(x)
        x = _conv_bn_relu(x, width, f"neck_{int(x.shape[1])}")
    return x


def _head(x, width: int, channels: int, name: str, bias: float):
    x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    return layers.Conv2D(channels, 1, dtype="float32", bias_initializer=keras.initializers.Constant(bias),
                         name=f"{name}_logits")(x)


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


# ---- targets and loss (keras.ops) ----------------------------------------------------------------
def centre_cells(boxes, height: int, width: int):
    """(row, col) int32 of each box's centre cell, (B, M) each, clipped to the map (padding rows included)."""
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    row = ops.clip(ops.cast(ops.floor(cy * height), "int32"), 0, height - 1)
    col = ops.clip(ops.cast(ops.floor(cx * width), "int32"), 0, width - 1)
    return row, col


def heat_target(y_true, height: int, width: int, num_classes: int):
    """(B, M, 5) padded box rows -> the centre heat (B, h, w, C) and the positives (B, h, w, C) in 0/1.

    Per box an axis-aligned Gaussian peaking at 1 on its centre cell (sigma from the box's side, TTFNet);
    boxes combine as a p-norm, which is a sum of sharper Gaussians, so each axis stays separate and an einsum
    over M builds the map without a (B, M, h, w) tensor. The positives are exactly the centre cells."""
    boxes, valid = y_true[..., :4], ops.cast(y_true[..., 4] >= 0, "float32")
    classes = ops.one_hot(ops.cast(ops.maximum(y_true[..., 4], 0.0), "int32"), num_classes) * valid[..., None]
    row, col = centre_cells(boxes, height, width)
    sigma_x = ops.maximum((boxes[..., 2] - boxes[..., 0]) * width * SIGMA_PER_SIZE, MIN_SIGMA)
    sigma_y = ops.maximum((boxes[..., 3] - boxes[..., 1]) * height * SIGMA_PER_SIZE, MIN_SIGMA)
    gauss_x = _gaussian_power(ops.arange(width, dtype="float32"), ops.cast(col, "float32"), sigma_x)
    gauss_y = _gaussian_power(ops.arange(height, dtype="float32"), ops.cast(row, "float32"), sigma_y)
    summed = ops.einsum("bmyc,bmx->byxc", ops.einsum("bmc,bmy->bmyc", classes, gauss_y), gauss_x)
    heat = ops.minimum(ops.power(summed, 1.0 / OVERLAP_POWER), 1.0)
    at_centre = ops.einsum("bmyc,bmx->byxc", ops.einsum("bmc,bmy->bmyc", classes, ops.one_hot(row, height)),
                           ops.one_hot(col, width))
    return ops.stop_gradient(heat), ops.cast(at_centre > 0.5, "float32")


def _gaussian_power(cells, centre, sigma):
    """(B, M, n): exp(-(cell - centre)^2 / 2 sigma^2) to the power OVERLAP_POWER."""
    return ops.exp(-OVERLAP_POWER * (cells[None, None, :] - centre[..., None]) ** 2 / (2 * sigma[..., None] ** 2))


def focal_heat_loss(heat_true, positives, heat_pred):
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed per image (B,).

    The logs take max(p, 1e-12), not CenterNet's clamp to 1e-4..1-1e-4: a clamp passes no gradient, so a class
    whose heat fell below 1e-4 at its centres early on never came back (seen on 8 images of rectangles)."""
    p = heat_pred
    pos = -ops.log(ops.maximum(p, LOG_FLOOR)) * (1 - p) ** 2 * positives
    neg = -ops.log(ops.maximum(1 - p, LOG_FLOOR)) * p ** 2 * (1 - heat_true) ** 4 * (1 - positives)
    return ops.sum(pos + neg, axis=(1, 2, 3))


def centre_boxes(y_true, ltrb_map):
    """The box the model predicts at each true box's centre cell, (B, M, 4) xyxy."""
    height, width = ltrb_map.shape[1], ltrb_map.shape[2]
    row, col = centre_cells(y_true[..., :4], height, width)
    flat = ops.reshape(ltrb_map, (-1, height * width, 4))
    ltrb = ops.take_along_axis(flat, ops.repeat((row * width + col)[..., None], 4, axis=-1), axis=1)
    cx, cy = (ops.cast(col, "float32") + 0.5) / width, (ops.cast(row, "float32") + 0.5) / height
    return ops.stack([cx - ltrb[..., 0], cy - ltrb[..., 1], cx + ltrb[..., 2], cy + ltrb[..., 3]], axis=-1)


@keras.saving.register_keras_serializable(package="podium")
class DetectionLoss(keras.losses.Loss):
    """Focal loss on the centre heat + box_weight x (1 - GIoU) of the box at each true centre.

    Both are normalised by the batch's number of boxes (at least 1), as CenterNet does: each image's value is
    its own sum x batch size / boxes in the batch, so the batch mean is the per-box loss. An image without
    boxes adds its (all-negative) focal term and nothing else."""

    def __init__(self, num_classes: int, box_weight: float = 1.0, name: str = "detection", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes, self.box_weight = int(num_classes), float(box_weight)

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        c, height, width = self.num_classes, y_pred.shape[1], y_pred.shape[2]
        heat, positives = heat_target(y_true, height, width, c)
        focal = focal_heat_loss(heat, positives, y_pred[..., :c])
        valid = ops.cast(y_true[..., 4] >= 0, "float32")
        true_boxes = ops.where(valid[..., None] > 0, y_true[..., :4], ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0]))
        pred_boxes = centre_boxes(y_true, y_pred[..., c:])
        _, giou = box_iou_and_giou(ops.reshape(true_boxes, (-1, 4)), ops.reshape(pred_boxes, (-1, 4)))
        box = ops.sum(ops.reshape(1.0 - giou, ops.shape(valid)) * valid, axis=1)
        batch = ops.cast(ops.shape(y_true)[0], "float32")
        return (focal + self.box_weight * box) * batch / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "box_weight": self.box_weight}


def detection_metrics(num_classes: int) -> list:
    """None in fit: mAP needs decoded boxes over the whole validation set (the task computes it per epoch)."""
    return []


# ---- numpy side: boxes from the maps, TTA inverse ------------------------------------------------
def decode(maps: np.ndarray, max_boxes: int = 100, min_score: float = 0.01) -> list[np.ndarray]:
    """(B, h, w, C + 4) maps -> per image (m, 6) float32 rows [class, score, x1, y1, x2, y2], score descending.

    A box is a local maximum of its class's heat over the 3x3 cells around it (CenterNet's NMS-free peak
    picking); the best `max_boxes` over all classes with score >= min_score are kept, clipped to 0..1."""
    maps = np.asarray(maps, dtype=np.float32)
    maps = maps[None] if maps.ndim == 3 else maps
    return [_decode_one(one, max_boxes, min_score) for one in maps]


def _decode_one(maps: np.ndarray, max_boxes: int, min_score: float) -> np.ndarray:
    height, width, channels = maps.shape
    heat = maps[..., :channels - 4]
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.max([padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)], axis=0)
    scores = np.where(heat == pooled, heat, -1.0).reshape(-1)
    k = min(max_boxes, scores.size)
    if k <= 0:
        return np.zeros((0, 6), np.float32)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[scores[top] >= min_score]
    top = top[np.argsort(-scores[top], kind="stable")]
    rows, cols, classes = np.unravel_index(top, heat.shape)
    left, up, right, down = maps[rows, cols, channels - 4:].T
    cx, cy = (cols + 0.5) / width, (rows + 0.5) / height
    boxes = np.clip(np.stack([cx - left, cy - up, cx + right, cy + down], axis=1), 0.0, 1.0)
    return np.column_stack([classes, scores[top], boxes]).astype(np.float32)


def undo_view(view: str, maps: np.ndarray) -> np.ndarray:
    """TTA: maps predicted on a flipped, turned or transposed image moved back onto the original cells, with
    the ltrb channels swapped to match (a left distance is a right one after a mirror): the decoded boxes are
    exactly the view's boxes moved back. A shift or zoom moves boxes off the cells: no inverse."""
    if view not in orientation.INVERSE:
        raise PodiumError(f"TTA view {view!r} cannot be undone on detection maps.",
                          expected=", ".join(orientation.INVERSE), received=repr(view),
                          fix="set tta to flips and turns only (e.g. [identity,hflip,vflip]) for task=detection")
    back = orientation.INVERSE[view]
    moved = np.asarray(ops.convert_to_numpy(orientation.orient(ops.convert_to_tensor(maps, "float32"), back)))
    order = np.arange(4)
    for applied, after in zip(orientation.ORIENTATIONS[back], _LTRB_AFTER):
        if applied:
            order = order[list(after)]
    return np.concatenate([moved[..., :-4], moved[..., -4:][..., order]], axis=-1)
