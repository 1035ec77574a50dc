"""Batch and CPU augmentation recipes on real demo JPEGs: they change images, keep shapes and the 0..255
range, mix labels only where they should, and are reproducible from a seed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from podium.training import augment
from podium.errors import PodiumError

DEMO_TRAIN = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo" / "train.zip"
SIZE = 32
NUM_CLASSES = 10


@pytest.fixture(scope="module")
def demo_images() -> np.ndarray:
    """32 real 32x32 JPEGs spread over the demo's classes, uint8 (32, 32, 32, 3)."""
    with zipfile.ZipFile(DEMO_TRAIN) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".jpg"))[::60][:32]
        images = [np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB")) for n in names]
    return np.stack(images)


@pytest.fixture(scope="module")
def batch(demo_images):
    labels = np.eye(NUM_CLASSES, dtype="float32")[np.arange(len(demo_images)) % NUM_CLASSES]
    return demo_images.astype("float32"), labels


@pytest.mark.parametrize("name", augment.batch_recipe_names())
def test_every_batch_recipe_changes_a_real_batch_and_keeps_shape_and_range(name, batch):
    images, labels = batch
    out_images, out_labels = augment.make_batch_augmenter([name], SIZE, seed=0)(images, labels)
    assert out_images.shape == images.shape and out_images.dtype == np.float32
    assert out_images.min() >= 0.0 and out_images.max() <= 255.0
    assert np.abs(out_images - images).max() > 1.0, f"{name} left the batch unchanged"
    assert out_labels.shape == labels.shape and out_labels.dtype == np.float32
    if not augment.BATCH_RECIPES[name].mixes_labels:
        np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_recipes_mix_labels_and_rows_still_sum_to_one(name, batch):
    images, labels = batch
    _, mixed = augment.make_batch_augmenter([name], SIZE, seed=3)(images, labels)
    assert np.abs(mixed - labels).max() > 0.01, f"{name} did not mix the labels"
    assert ((mixed > 0.0) & (mixed < 1.0)).any(), "some row should be a blend of two classes"
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    assert mixed.min() >= 0.0 and mixed.max() <= 1.0 + 1e-6


def test_same_seed_gives_the_same_first_batch_and_another_seed_does_not(batch):
    images, labels = batch
    chain = ["flip", "crop", "color", "mixup", "erasing"]
    first = augment.make_batch_augmenter(chain, SIZE, seed=7)(images, labels)
    again = augment.make_batch_augmenter(chain, SIZE, seed=7)(images, labels)
    other = augment.make_batch_augmenter(chain, SIZE, seed=8)(images, labels)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert np.abs(first[0] - other[0]).max() > 1.0


def test_consecutive_batches_get_different_augmentations(batch):
    images, labels = batch
    augmenter = augment.make_batch_augmenter(["flip", "crop"], SIZE, seed=0)
    first, _ = augmenter(images, labels)
    second, _ = augmenter(images, labels)
    assert np.abs(first - second).max() > 1.0


def test_flip_is_horizontal_only_and_chosen_per_image(batch):
    images, labels = batch
    out, _ = augment.make_batch_augmenter(["flip"], SIZE, seed=1)(images, labels)
    kept = [np.array_equal(o, x) for o, x in zip(out, images)]
    mirrored = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, images)]
    assert all(k or m for k, m in zip(kept, mirrored)), "flip produced something other than a mirror"
    assert any(kept) and any(mirrored), "every image got the same flip decision"


def _orientations_of(image: np.ndarray) -> dict[str, np.ndarray]:
    return {"identity": image, "vflip": image[::-1], "rot90": np.rot90(image, 1), "rot180": np.rot90(image, 2),
            "rot270": np.rot90(image, 3)}


@pytest.mark.parametrize("name, allowed", [("vflip", {"identity", "vflip"}),
                                           ("rot90", {"identity", "rot90", "rot180", "rot270"})])
def test_vflip_and_rot90_give_each_image_its_own_exact_orientation(name, allowed, batch):
    """Top-down images: every output is the input upside down or turned by quarters, exactly (no
    interpolation), chosen per image, and all choices occur in a batch of 32."""
    images, labels = batch
    out, out_labels = augment.make_batch_augmenter([name], SIZE, seed=4)(images, labels)
    seen = []
    for o, x in zip(out, images):
        matches = [k for k, v in _orientations_of(x).items() if np.array_equal(o, v)]
        assert matches and set(matches) <= allowed, f"{name} produced something other than {sorted(allowed)}"
        seen.append(matches[0])
    assert set(seen) == allowed, f"{name} chose only {sorted(set(seen))} over 32 images"
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("name", ["vflip", "rot90"])
def test_vflip_and_rot90_are_seeded(name, batch):
    images, labels = batch
    first, _ = augment.make_batch_augmenter([name], SIZE, seed=11)(images, labels)
    again, _ = augment.make_batch_augmenter([name], SIZE, seed=11)(images, labels)
    other, _ = augment.make_batch_augmenter([name], SIZE, seed=12)(images, labels)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1.0


def test_a_mask_and_a_box_turn_with_their_image(batch):
    """Segmentation and localization: the target moves exactly as the image does (training.augment_pairs)."""
    from podium.training.augment_pairs import BoxAugmenter, MaskAugmenter

    images, _ = batch
    masks = np.zeros((len(images), SIZE, SIZE, 1), "float32")
    masks[:, 2:10, 4:20] = 1.0  # off-centre and not square: every orientation moves it somewhere else
    out_images, out_masks = MaskAugmenter(["vflip", "rot90"], SIZE, seed=5)(images, masks)
    for o, x, m, om in zip(out_images, images, masks, out_masks):
        name = next(k for k, v in _orientations_of_all(x).items() if np.array_equal(o, v))
        np.testing.assert_array_equal(om, _orientations_of_all(m)[name])
    boxes = np.tile(np.array([[1.0, 0.0, 4 / SIZE, 2 / SIZE, 20 / SIZE, 10 / SIZE]], "float32"), (len(images), 1))
    box_images = images * 0.0
    box_images[:, 2:10, 4:20] = 255.0  # the box's pixels, columns 4..19 and rows 2..9
    out_images, out_boxes = BoxAugmenter(["vflip", "rot90"], SIZE, seed=6)(box_images, boxes)
    for image, box in zip(out_images, out_boxes):
        rows, cols = np.nonzero(image[..., 0] > 127)
        np.testing.assert_allclose(box[2:], [cols.min() / SIZE, rows.min() / SIZE, (cols.max() + 1) / SIZE,
                                             (rows.max() + 1) / SIZE], atol=1e-6)
        np.testing.assert_array_equal(box[:2], [1.0, 0.0])
    assert len({tuple(np.round(box, 4)) for box in out_boxes}) > 2, "every box got the same orientation"


def _orientations_of_all(image: np.ndarray) -> dict[str, np.ndarray]:
    """The eight symmetries of a square image (vflip then a quarter turn reaches all of them)."""
    return {f"{flip}{turn}": np.rot90(image[::-1] if flip else image, turn) for flip in ("", "v") for turn in range(4)}


def test_crop_translates_each_image_by_its_own_offset_within_the_reflect_padding(batch):
    images, labels = batch
    pad = SIZE // 8
    out, _ = augment.make_batch_augmenter(["crop"], SIZE, seed=2)(images, labels)
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
    offsets = []
    for i in range(len(images)):
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if np.array_equal(out[i], padded[i, dy:dy + SIZE, dx:dx + SIZE])]
        assert matches, f"image {i} is not a crop of its reflect-padded self"
        offsets.append(matches[0])
    assert len(set(offsets)) > 3, "all images share one crop offset (keras.layers.RandomCrop's behaviour)"


def test_empty_recipe_list_gives_no_augmenter():
    assert augment.make_batch_augmenter([], SIZE, seed=0) is None


def test_unknown_recipe_names_raise_podium_error_listing_valid_ones():
    with pytest.raises(PodiumError) as batch_error:
        augment.make_batch_augmenter(["flip", "flipp"], SIZE, seed=0)
    assert "flipp" in batch_error.value.received and "randaugment" in batch_error.value.expected
    with pytest.raises(PodiumError) as cpu_error:
        augment.make_cpu_augmenter("extreme", SIZE, seed=0)
    assert "heavy" in cpu_error.value.expected


def test_mixing_recipe_without_labels_and_wrong_image_size_raise(batch):
    images, _ = batch
    with pytest.raises(PodiumError, match="mix labels"):
        augment.make_batch_augmenter(["mixup"], SIZE, seed=0)(images, None)
    with pytest.raises(PodiumError, match="wrong shape"):
        augment.make_batch_augmenter(["flip"], 64, seed=0)(images, None)


def test_cpu_recipe_none_gives_no_augmenter():
    assert augment.make_cpu_augmenter("none", SIZE, seed=0) is None


@pytest.mark.parametrize("name", [n for n in augment.cpu_recipe_names() if n != "none"])
def test_cpu_recipes_change_real_images_and_keep_size_and_dtype(name, demo_images):
    augmenter = augment.make_cpu_augmenter(name, SIZE, seed=0)
    outputs = [augmenter(image) for image in demo_images[:16]]
    assert all(o.shape == (SIZE, SIZE, 3) and o.dtype == np.uint8 for o in outputs)
    changed = sum(not np.array_equal(o, x) for o, x in zip(outputs, demo_images))
    assert changed >= 8, f"{name} changed only {changed} of 16 images"


def test_cpu_recipes_are_reproducible_from_the_seed(demo_images):
    first = [augment.make_cpu_augmenter("heavy", SIZE, seed=5)(x) for x in demo_images[:8]]
    again = [augment.make_cpu_augmenter("heavy", SIZE, seed=5)(x) for x in demo_images[:8]]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    augmenter = augment.make_cpu_augmenter("heavy", SIZE, seed=5)
    stream = [augmenter(x) for x in demo_images[:8]]
    np.testing.assert_array_equal(stream[0], first[0])


def test_cpu_augmenter_rejects_float_images(demo_images):
    with pytest.raises(PodiumError, match="uint8"):
        augment.make_cpu_augmenter("light", SIZE, seed=0)(demo_images[0].astype("float32"))


def test_preview_grid_writes_a_valid_png_atomically(demo_images, tmp_path):
    out = augment.preview_grid(demo_images[:4], ["flip", "cutmix", "medium"], tmp_path / "plots" / "aug.png")
    assert out == tmp_path / "plots" / "aug.png" and out.stat().st_size > 0
    with Image.open(out) as png:
        assert png.format == "PNG" and png.width > 0 and png.height > png.width / 2  # 4 rows x 4 columns
    assert [p.name for p in out.parent.iterdir()] == ["aug.png"], "a temp file was left behind"


def test_preview_grid_rejects_unknown_recipes_before_writing(demo_images, tmp_path):
    with pytest.raises(PodiumError):
        augment.preview_grid(demo_images[:2], ["flip", "sparkle"], tmp_path / "aug.png")
    assert not (tmp_path / "aug.png").exists()


def test_augmentation_cost_measures_batch_and_cpu_recipes(demo_images):
    batch_rate = augment.augmentation_cost(["flip", "crop"], demo_images[:8], repeats=1)
    cpu_rate = augment.augmentation_cost("light", demo_images[:8], repeats=1)
    assert isinstance(batch_rate, float) and 0 < batch_rate < float("inf")
    assert isinstance(cpu_rate, float) and 0 < cpu_rate < float("inf")
    assert augment.augmentation_cost("none", demo_images[:8]) == float("inf")
