"""Overlapping tiles of one scene (Airbus' leak) are found from their blocks; unrelated tiles are not.

Scenes are mosaics of real demo JPEGs (4 x 4 photos of 32 px); tiles are 96 px cuts on a 32 px grid,
re-encoded as JPEG, so shared blocks are similar, not identical, as on satellite tiles."""

import io

import numpy as np
import pytest
from PIL import Image

from podium.data.hash_search import DEFAULT_THRESHOLD
from podium.data.perceptual_hash import hash_images
from podium.data.tile_overlaps import block_hashes, overlap_groups, overlap_pairs
from podium.errors import PodiumError
from tests_support import real_demo_jpegs

OFFSETS = [(0, 0), (0, 32), (32, 0), (32, 32)]  # (row, col) of each tile in its 128 px scene


def _scene(photos: list[bytes]) -> np.ndarray:
    cells = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in photos]
    return np.vstack([np.hstack(cells[row * 4:row * 4 + 4]) for row in range(4)])


def _tiles(scene: np.ndarray) -> list[bytes]:
    out = []
    for row, col in OFFSETS:
        buffer = io.BytesIO()
        Image.fromarray(scene[row:row + 96, col:col + 96]).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


@pytest.fixture(scope="module")
def tiles() -> list[bytes]:
    photos = real_demo_jpegs(48)
    return [tile for k in range(3) for tile in _tiles(_scene(photos[16 * k:16 * k + 16]))]  # 3 scenes x 4 tiles


def test_tiles_of_one_scene_share_a_group_and_other_scenes_do_not(tiles):
    phash, usable = block_hashes(tiles, grid=3)
    groups = overlap_groups(phash, usable, grid=3, threshold=DEFAULT_THRESHOLD)
    assert groups.tolist() == [0] * 4 + [4] * 4 + [8] * 4


def test_whole_image_hashes_alone_miss_the_overlap(tiles):
    """Why blocks: a tile shifted by a third of its side is not a near-duplicate of the whole."""
    hashes = hash_images(tiles)
    from podium.data.perceptual_hash import hamming

    assert hamming(hashes.phash[0], hashes.phash[3]) > DEFAULT_THRESHOLD  # diagonal neighbours


def test_one_matching_block_is_not_enough_by_default(tiles):
    """Tiles (0,0) and (32,32) share four blocks at one offset; demanding five separates them."""
    phash, usable = block_hashes(tiles[:4], grid=3)
    left, right = overlap_pairs(phash, usable, grid=3, threshold=DEFAULT_THRESHOLD, min_blocks=5)
    assert (0, 3) not in set(zip(left.tolist(), right.tolist()))
    assert (0, 1) in set(zip(left.tolist(), right.tolist()))  # a one-block shift shares six


def test_flat_blocks_never_match():
    grey = io.BytesIO()
    Image.new("RGB", (96, 96), (90, 90, 90)).save(grey, format="PNG")
    phash, usable = block_hashes([grey.getvalue()] * 3, grid=3)
    assert not usable.any()
    assert len(overlap_pairs(phash, usable, grid=3, threshold=DEFAULT_THRESHOLD)[0]) == 0


def test_a_bad_grid_is_refused():
    with pytest.raises(PodiumError, match="tile grid"):
        block_hashes([], grid=1)


def test_make_dups_with_tiles_keeps_a_scene_in_one_fold(tmp_path):
    """Through the real stages: files -> index -> dups --tiles 3 -> k-fold: no scene spans two folds."""
    import zipfile

    import pandas as pd

    from podium.data.audit import TILE_OVERLAP, LeakError, audit_split
    from podium.data.duplicates import run_dups
    from podium.data.folds import load_or_make_split, make_kfold
    from podium.data.index import load_index
    from tests_support import make_data

    photos = real_demo_jpegs(16 * 8)
    source = tmp_path / "source"
    source.mkdir()
    with zipfile.ZipFile(source / "train.zip", "w") as archive:
        for scene in range(8):
            for k, tile in enumerate(_tiles(_scene(photos[16 * scene:16 * scene + 16]))):
                archive.writestr(f"train/{'ab'[scene % 2]}/scene{scene}-tile{k}.jpg", tile)
    with zipfile.ZipFile(source / "test.zip", "w") as archive:
        archive.writestr("test/t0.jpg", real_demo_jpegs(1)[0])
    pd.DataFrame({"id": ["t0"], "label": ["a"]}).to_csv(source / "sample_submission.csv", index=False)
    spec = tmp_path / "tiles.yaml"
    spec.write_text("slug: tiles\nlayout: folder\n")

    summary = make_data(str(spec), str(tmp_path / "data"), source_dir=str(source))
    root = summary.root
    # a split made from whole-image groups alone puts tiles of one scene in different folds: audit sees it
    plain_split, plain_path = load_or_make_split(load_index(root / "index.parquet"), root, 4, 0.0, 0)
    with pytest.raises(LeakError) as leak:
        audit_split(load_index(root / "index.parquet"), plain_split, root, plain_path, DEFAULT_THRESHOLD, tiles=3)
    assert (leak.value.leaks["distance"] == TILE_OVERLAP).all() and leak.value.gallery.is_file()

    result = run_dups(root, tiles=3)
    assert result.tile_pairs >= 8 * 6 - 8  # most of each scene's 6 tile pairs are found directly
    index = load_index(root / "index.parquet")
    train = index[index["split"] == "train"].assign(scene=lambda f: f["id"].str.extract(r"scene(\d)")[0])
    assert train.groupby("scene")["group"].nunique().eq(1).all()  # one group per scene...
    assert train.groupby("group")["scene"].nunique().eq(1).all()  # ...and no group mixes scenes
    folds = make_kfold(index, n_folds=4, seed=0).merge(train[["id", "scene"]], on="id")
    assert folds.groupby("scene")["fold"].nunique().eq(1).all()
    split, path = load_or_make_split(index, root, 4, 0.0, 0, force=True)
    assert audit_split(index, split, root, path, DEFAULT_THRESHOLD, tiles=3).duplicate_pairs_within_folds >= 40
    without = run_dups(root, tiles=0)  # whole-image hashes alone: every tile on its own
    assert without.summary.groups == 0 and without.summary.changed
