"""The ellipse-and-rectangle generator: seeded, the mask is the ellipse alone, the distractor never touches it."""

import numpy as np

from podium.data.rle import split_objects
from podium.experiments.synthetic import make_shapes


def test_same_seed_same_set_and_other_seed_other_set():
    a, b, c = make_shapes(20, 48, seed=3), make_shapes(20, 48, seed=3), make_shapes(20, 48, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)


def test_mask_is_one_ellipse_and_the_box_encloses_it():
    shapes = make_shapes(30, 64, seed=5)
    for mask, box in zip(shapes.masks[..., 0], shapes.boxes):
        assert len(split_objects(mask)) == 1
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(box, [xs.min() / 64, ys.min() / 64, (xs.max() + 1) / 64, (ys.max() + 1) / 64])


def test_distractor_has_the_objects_colour_range_but_is_not_in_the_mask():
    shapes = make_shapes(40, 64, seed=6)
    for image, mask, bright in zip(shapes.images, shapes.masks[..., 0], shapes.bright):
        ellipse_mean = image[mask > 0].mean()
        sea_mean = image[mask == 0].mean()  # the rectangle is counted as sea here, pulling it toward objects
        assert (ellipse_mean > sea_mean) == bool(bright)


def test_object_probability_gives_empty_masks():
    shapes = make_shapes(200, 32, seed=7, object_probability=0.5)
    empty = shapes.masks.reshape(200, -1).sum(1) == 0
    np.testing.assert_array_equal(empty, shapes.has_object == 0)
    assert 70 < empty.sum() < 130
    assert (shapes.boxes[empty] == 0).all()
