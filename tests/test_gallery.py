"""podium.data.gallery: the pictures `make audit` and `make eda` show. Solid-colour images make what is drawn
readable from the PNG itself: each colour's pixels say where its image landed."""

from pathlib import Path

import numpy as np
from PIL import Image

from podium.data.gallery import class_grid, pair_gallery

RED, GREEN, BLUE, YELLOW, MAGENTA, CYAN = (255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 220, 0), (200, 0, 200), \
    (0, 200, 200)


def _solid(colour, side=12) -> np.ndarray:
    return np.full((side, side, 3), colour, dtype=np.uint8)


def _where(png: Path, colour) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the PNG's pixels of exactly `colour` (tile interiors; edges may blend)."""
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return np.nonzero((np.abs(pixels - np.array(colour)) <= 2).all(axis=-1))


def _tiles_across(png: Path, colour) -> int:
    """How many separate tiles of `colour` stand side by side (runs of columns with a gap between)."""
    columns = np.unique(_where(png, colour)[1])
    return int((np.diff(columns) > 1).sum()) + 1


def _box(png: Path, colour) -> tuple[int, int, int, int]:
    rows, cols = _where(png, colour)
    assert rows.size, f"no {colour} pixels drawn"
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_class_grid_draws_one_row_per_class_in_order_with_its_images(tmp_path):
    samples = {"red": [_solid(RED), _solid(RED), _solid(RED)], "green": [_solid(GREEN)], "empty": []}
    out = class_grid(samples, tmp_path / "grid.png", "samples")
    assert out == tmp_path / "grid.png" and sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    red_top, red_bottom, red_left, red_right = _box(out, RED)
    green_top, green_bottom, green_left, green_right = _box(out, GREEN)
    assert red_bottom < green_top  # the classes' rows in the order given
    assert abs(red_left - green_left) <= 2  # both start in the first column
    assert (_tiles_across(out, RED), _tiles_across(out, GREEN)) == (3, 1)  # each class's images, no more


def test_pair_gallery_puts_each_pair_side_by_side_three_to_a_row(tmp_path):
    pairs = [(_solid(RED), _solid(BLUE), "train/a.jpg", "test/a.jpg", "same image"),
             (_solid(GREEN), _solid(YELLOW), "train/b.jpg", "test/b.jpg", "resized"),
             (_solid(CYAN), _solid(CYAN), "train/c.jpg", "test/c.jpg", "resized"),
             (_solid(MAGENTA), _solid(MAGENTA), "train/d.jpg", "test/d.jpg", "fourth pair")]
    out = pair_gallery(pairs, tmp_path / "pairs.png", "leaks")
    red, blue, magenta = _box(out, RED), _box(out, BLUE), _box(out, MAGENTA)
    assert red[1] < magenta[0]  # the fourth pair starts a second row
    assert abs(red[0] - blue[0]) <= 2 and red[3] < blue[2]  # left image, then right image, on one row
    green_left, green_right = _box(out, GREEN)[2:]
    yellow_left = _box(out, YELLOW)[2]
    assert blue[3] < green_left and green_right < yellow_left  # the second pair to the right of the first
    assert _tiles_across(out, CYAN) == 2 and _box(out, CYAN)[2] > yellow_left  # the third pair: two images
    assert abs(magenta[2] - red[2]) <= 2 and _tiles_across(out, MAGENTA) == 2  # the fourth under the first
