"""Segmentation: scores against hand-computed values, losses, masks moving with images, TTA undoing
its views, the models' shapes, and (slow) a U-Net learning the generated ellipses through train_and_evaluate."""

import keras
import numpy as np
import pytest

from podium.tasks import get_task
from podium.training import seg_losses
from podium.scoring import segmentation as seg_scores
from podium.training import tta
from podium.training.augment_pairs import MaskAugmenter
from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.models.segmentation import build_residual_unet, build_segmenter


def _boxes_mask(size, *boxes):
    mask = np.zeros((size, size), np.uint8)
    for top, bottom, left, right in boxes:
        mask[top:bottom, left:right] = 1
    return mask


def test_airbus_score_equals_the_hand_computed_value():
    # Image 1: ships A (rows 0-1, cols 0-4: 10 px) and B (rows 6-9, cols 6-9). Predicted: A less one pixel
    # (IoU 9/10 = 0.9) and a 2-pixel speck that overlaps nothing. B is missed.
    # Thresholds 0.50..0.85 (8 of 10) have IoU 0.9 above them: TP 1, FN 1 (B), FP 1 (speck):
    #   F2 = 5*1 / (5*1 + 4*1 + 1) = 0.5. At 0.90 and 0.95: TP 0, FN 2, FP 2 -> 0. Image: 8 * 0.5 / 10 = 0.4.
    truth1 = _boxes_mask(10, (0, 2, 0, 5), (6, 10, 6, 10))
    pred1 = _boxes_mask(10, (0, 2, 0, 5), (4, 5, 0, 2))
    pred1[1, 4] = 0
    # Image 2: no ships, nothing predicted -> 1. Image 3: no ships, something predicted -> 0.
    truth2, pred2 = np.zeros((10, 10)), np.zeros((10, 10))
    truth3, pred3 = np.zeros((10, 10)), _boxes_mask(10, (3, 5, 3, 5))
    score = seg_scores.airbus_score(np.stack([truth1, truth2, truth3]), np.stack([pred1, pred2, pred3]))
    assert score == pytest.approx((0.4 + 1.0 + 0.0) / 3)


def test_dice_iou_and_the_seeds_stepped_iou_per_image():
    truth = _boxes_mask(8, (0, 4, 0, 4))[None]  # 16 px
    pred = _boxes_mask(8, (0, 4, 0, 2))[None].astype(float) * 0.9  # 8 px, all inside the truth
    assert seg_scores.dice_per_image(truth, pred)[0] == pytest.approx(2 * 8 / 24)
    assert seg_scores.iou_per_image(truth, pred)[0] == pytest.approx(0.5)
    assert seg_scores.stepped_iou_per_image(truth, pred)[0] == pytest.approx(0.1)  # floor((0.5-0.45)*20)/10
    empty = np.zeros((1, 8, 8))
    assert seg_scores.dice_per_image(empty, empty)[0] == 1.0
    assert seg_scores.stepped_iou_per_image(empty, pred)[0] == 0.0


@pytest.mark.parametrize("name", seg_losses.SEG_LOSSES)
def test_each_loss_prefers_the_right_mask(name):
    truth = np.stack([_boxes_mask(16, (2, 8, 2, 8)), _boxes_mask(16, (8, 14, 4, 12))])[..., None].astype("float32")
    good = np.clip(truth * 0.9 + 0.05, 0, 1)
    bad = 1.0 - good
    loss = seg_losses.make_seg_loss(name)
    good_loss = float(np.mean(keras.ops.convert_to_numpy(loss(truth, good))))
    bad_loss = float(np.mean(keras.ops.convert_to_numpy(loss(truth, bad))))
    assert np.isfinite(good_loss) and good_loss < bad_loss


def test_unknown_loss_is_refused():
    with pytest.raises(PodiumError):
        seg_losses.make_seg_loss("lovasz")


def test_masks_move_with_their_images():
    size = 32
    masks = np.stack([_boxes_mask(size, (2, 10, 3, 20)), _boxes_mask(size, (15, 30, 1, 6))] * 4)[..., None]
    images = np.repeat(masks, 3, axis=-1).astype("float32") * 255.0  # the picture *is* the mask
    augmenter = MaskAugmenter(["flip", "crop", "rotation"], size, seed=1)
    moved_images, moved_masks = augmenter(images, masks)
    assert set(np.unique(moved_masks)) <= {0.0, 1.0}
    assert not np.array_equal(moved_masks, masks)  # something moved
    agreement = ((moved_images[..., 0] > 127.5) == (moved_masks[..., 0] > 0.5)).mean()
    assert agreement > 0.99  # interpolation may disagree on a few edge pixels, never on the shape


def test_colour_recipes_are_refused_for_masks():
    with pytest.raises(PodiumError, match="cannot move"):
        MaskAugmenter(["color"], 32, seed=0)
    with pytest.raises(PodiumError, match="augment"):
        ExperimentConfig(task="segmentation", monitor="val_dice", augment=["mixup"])


def _brightness_model(size):
    """A real (untrained, fixed) model whose mask output is each pixel's mean brightness / 255."""
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=keras.initializers.Constant(1 / 765))(inputs)
    return keras.Model(inputs, outputs)


def test_tta_undoes_flips_and_shifts_before_averaging():
    size = 16
    rng = np.random.default_rng(0)
    images = rng.random((4, size, size, 3)).astype("float32") * 255
    model = _brightness_model(size)
    views = ["identity", "hflip", "shift_left", "shift_up"]
    mean, per_view = tta.predict_tta(model, [images], views, invert=tta.undo_view)
    plain = per_view["identity"]
    np.testing.assert_allclose(per_view["hflip"], plain, atol=1e-5)  # flipped back: identical
    pad = tta.shift_pixels(size)
    # content that left the frame comes back as reflection: only the band it never left must agree
    np.testing.assert_allclose(per_view["shift_left"][:, :, pad:], plain[:, :, pad:], atol=1e-5)
    np.testing.assert_allclose(per_view["shift_up"][:, pad:], plain[:, pad:], atol=1e-5)
    _, not_undone = tta.predict_tta(model, [images], ["identity", "hflip"])
    assert not np.allclose(not_undone["hflip"], plain, atol=1e-3)  # without undoing, the views disagree
    with pytest.raises(PodiumError):
        tta.undo_view("zoom_in", plain)


@pytest.mark.parametrize("decoder", ["unet", "residual_unet"])
def test_models_take_raw_pixels_and_return_one_mask_channel(decoder):
    cfg = ExperimentConfig(task="segmentation", monitor="val_dice", decoder=decoder, image_size=32, unet_filters=4)
    model = build_segmenter(cfg)
    assert model.layers[1].name == "preprocess"
    out = model.predict_on_batch(np.full((2, 32, 32, 3), 200.0, "float32"))
    assert out.shape == (2, 32, 32, 1) and ((0 <= out) & (out <= 1)).all()


def test_unet_on_a_keras_application_backbone():
    cfg = ExperimentConfig(task="segmentation", monitor="val_dice", backbone="mobilenetv3_large", image_size=64)
    model = build_segmenter(cfg)
    assert model.output.shape[1:] == (64, 64, 1)
    assert len(model.get_layer("backbone").outputs) >= 4  # skips at several strides were found


def test_residual_unet_refuses_a_size_it_cannot_pool():
    with pytest.raises(PodiumError):
        build_residual_unet(36)  # three poolings, 36 / 8 is no whole number


def test_task_config_checks_monitor_and_keeps_old_run_ids():
    with pytest.raises(PodiumError, match="val_dice"):
        ExperimentConfig(task="segmentation", monitor="val_accuracy")  # which it never logs
    assert ExperimentConfig().config_hash() == "08a54a50"  # the hash before tasks existed
    assert ExperimentConfig(task="segmentation", monitor="val_dice").config_hash() != "08a54a50"
    # monitor=metric (the default) of a segmentation config on the demo spec: the task's own Dice, logged as
    # val_dice, max: the very run id of the config that named them
    default = ExperimentConfig(task="segmentation")
    assert (default.resolved_monitor, default.resolved_mode) == ("val_dice", "max")
    assert default.config_hash() == ExperimentConfig(task="segmentation", monitor="val_dice", mode="max").config_hash()


@pytest.mark.slow
def test_unet_learns_the_ellipses_through_train_and_evaluate(tmp_path):
    from podium.data.dataset import in_memory_data
    from podium.experiments.synthetic import make_shapes
    from podium.runners.train import train_and_evaluate

    n = 300
    shapes = make_shapes(n, 32, seed=1)
    folds = np.where(np.arange(n) % 5 == 0, 0, 1)
    data = in_memory_data(shapes.images, shapes.has_object, folds, ["none", "ellipse"], targets=shapes.masks,
                          task="segmentation")
    cfg = ExperimentConfig(task="segmentation", image_size=32, monitor="val_dice", epochs=15, batch_size=16,
                           lr=3e-3, val_split=0.2, runs_dir=str(tmp_path), verbose=0, dropout=0.0, unet_filters=8,
                           schedule="constant", early_stopping_patience=15, augment=["flip"], tta=["identity", "hflip"])
    result = train_and_evaluate(cfg, get_task(cfg.task), 0, data=data)
    # Predicting nothing scores Dice 0 on every image here (each has an ellipse). Measured: ~0.71, 0.72 with TTA.
    assert result.val_score > 0.6
    assert result.val_score_tta > 0.6
    assert {"iou", "airbus_f2", "stepped_iou"} <= set(result.extra)
    assert (result.fold_dir / "oof.parquet").is_file()


def test_a_segmentation_config_on_the_classification_demo_is_refused_at_every_stage():
    from podium.data.dataset import load_labeled_data
    from podium.workflow import predict_run

    cfg = ExperimentConfig(task="segmentation", monitor="val_dice")  # competition: demo (classification)
    for stage in (lambda cfg: load_labeled_data(cfg, get_task(cfg.task)), lambda cfg: predict_run(cfg, get_task(cfg.task))):
        with pytest.raises(PodiumError, match="is a classification competition, the config trains segmentation"):
            stage(cfg)
