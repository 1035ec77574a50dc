"""Near-duplicate detection: the multi-index search equals brute force, planted copies of real images are
found and land in one fold, and the detector's measured quality meets its target on the demo."""

import zipfile

import numpy as np
import pandas as pd
import pytest
from planted import planted_demo

from podium.data.dup_quality import measure_detector, plant_copy
from podium.data.duplicates import assign_groups, run_dups
from podium.data.hash_search import DEFAULT_THRESHOLD, components, find_groups, find_pairs
from podium.data.perceptual_hash import hamming, hash_images
from podium.data.folds import make_kfold
from podium.data.images import decode_image
from podium.data.index import load_index
from podium.errors import PodiumError
from tests_support import DEMO_DIR, real_demo_jpegs


def _hashes_with_planted_pairs(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2 ** 63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes |= rng.integers(0, 2, n).astype(np.uint64)
    for k in range(0, 800, 2):  # pairs at every distance 0..14, around every threshold tested
        bits = rng.choice(64, int(rng.integers(0, 15)), replace=False)
        hashes[k + 1] = hashes[k] ^ np.uint64(sum(1 << int(b) for b in bits))
    hashes[900:906] = hashes[900]  # six identical hashes ...
    hashes[910] = hashes[900] ^ np.uint64(0b111)  # ... and a neighbour of theirs
    hashes[911] = hashes[910] ^ np.uint64(0b111 << 20)  # a chain: 911 reaches 900 only through 910
    return hashes


def _brute_force(hashes, threshold, mirrored=None):
    distance = hamming(hashes[:, None], hashes[None, :])
    if mirrored is not None:
        distance = np.minimum.reduce([distance, hamming(hashes[:, None], mirrored[None, :]),
                                      hamming(mirrored[:, None], hashes[None, :]),
                                      hamming(mirrored[:, None], mirrored[None, :])])
    left, right = np.nonzero(np.triu(distance <= threshold, 1))
    return left, right, distance[left, right]


@pytest.mark.parametrize("threshold", [0, 3, 8, 12])
def test_multi_index_search_equals_brute_force(threshold):
    hashes = _hashes_with_planted_pairs()
    left, right, distance = _brute_force(hashes, threshold)
    assert len(left) > 20 * (threshold + 1)  # the planted pairs are there to be found
    pairs = find_pairs(hashes, threshold)
    np.testing.assert_array_equal(pairs.left, left)
    np.testing.assert_array_equal(pairs.right, right)
    np.testing.assert_array_equal(pairs.distance, distance)
    np.testing.assert_array_equal(find_groups(hashes, threshold), components(len(hashes), left, right))


def test_mirrored_search_equals_brute_force():
    hashes = _hashes_with_planted_pairs(seed=1)
    mirrored = np.roll(hashes, 7) ^ np.uint64(0xF0F0)  # any second orientation will do for the search
    left, right, _ = _brute_force(hashes, 8, mirrored)
    pairs = find_pairs(hashes, 8, mirrored)
    np.testing.assert_array_equal(pairs.left, left)
    np.testing.assert_array_equal(pairs.right, right)
    np.testing.assert_array_equal(find_groups(hashes, 8, mirrored), components(len(hashes), left, right))


def test_groups_are_labelled_by_their_smallest_member_and_chains_join():
    hashes = _hashes_with_planted_pairs()
    labels = find_groups(hashes, 3)
    assert (labels[900:906] == 900).all() and labels[910] == 900 and labels[911] == 900
    assert (labels <= np.arange(len(hashes))).all()


def test_threshold_out_of_range_is_a_podium_error():
    with pytest.raises(PodiumError, match="threshold"):
        find_pairs(np.zeros(3, np.uint64), 40)


def test_hash_survives_brightness_resize_and_jpeg_and_mirror_is_found():
    image = decode_image(real_demo_jpegs(1)[0])
    rng = np.random.default_rng(0)
    original = hash_images([real_demo_jpegs(1)[0]])
    for transform in ("resize", "recompress", "brightness"):
        copy = hash_images([plant_copy(image, transform, rng)])
        assert hamming(original.phash, copy.phash)[0] <= DEFAULT_THRESHOLD, transform
    flipped = hash_images([plant_copy(image, "flip", rng)])
    assert hamming(original.phash, flipped.phash)[0] > 16  # a flip is a different picture to pHash ...
    assert hamming(original.mirrored, flipped.phash)[0] <= 2  # ... but the mirrored hash sees it
    others = hash_images(real_demo_jpegs(200)[1:])
    assert hamming(original.phash, others.phash).min() > DEFAULT_THRESHOLD  # unrelated images stay apart


def test_flat_and_broken_images_never_match_perceptually():
    import io

    from PIL import Image

    def png(value):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (value, value, value)).save(buffer, "PNG")
        return buffer.getvalue()

    hashes = hash_images([png(0), png(255), b"not an image"])
    assert hashes.flat.tolist() == [True, True, False] and hashes.ok.tolist() == [True, True, False]
    assert not hashes.matchable.any()


def test_planted_copies_are_grouped_and_kept_in_one_fold(demo_root, tmp_path):
    root, train_pairs, test_pairs = planted_demo(demo_root, tmp_path)
    before = load_index(root / "index.parquet")
    folds_before = make_kfold(before, 5, seed=0).set_index("id")["fold"]
    split_apart = sum(folds_before[a] != folds_before[b] for a, b in train_pairs)
    assert split_apart > 10  # without `dups` most copies land in another fold than their source

    (root / "splits").mkdir()
    (root / "splits" / "folds-k5-s0.csv").write_text("id,fold\n")
    result = run_dups(root)
    index = load_index(root / "index.parquet")
    group = index.set_index("id")["group"]
    assert all(group[a] == group[b] for a, b in train_pairs)
    assert all(group[source] == group[copy] for source, copy, _ in test_pairs)
    assert result.summary.groups == len(train_pairs) + len(test_pairs)  # and nothing else got merged
    assert result.summary.changed and result.stale_splits == [root / "splits" / "folds-k5-s0.csv"]

    folds = make_kfold(index, 5, seed=0).set_index("id")["fold"]
    assert all(folds[a] == folds[b] for a, b in train_pairs)

    suggestions = pd.read_csv(result.pseudo_labels_path, dtype=str).set_index("test_id")["label"]
    assert {copy: label for _, copy, label in test_pairs} == suggestions.to_dict()
    assert run_dups(root).summary.changed is False  # a second run with the same settings changes nothing


def test_group_ids_do_not_depend_on_row_order(demo_root, tmp_path):
    root, _, _ = planted_demo(demo_root, tmp_path, copies=6, test_copies=0)
    index = load_index(root / "index.parquet")
    hashes = hash_images([root / p for p in index["path"]])
    forward = assign_groups(index, hashes).set_index("id")["group"]
    order = np.random.default_rng(1).permutation(len(index))
    shuffled = assign_groups(index.iloc[order].reset_index(drop=True), hashes.take(order)).set_index("id")["group"]
    pd.testing.assert_series_equal(forward.sort_index(), shuffled.sort_index())


def test_dups_on_data_without_copies_keeps_groups_and_splits(demo_data, tmp_path):
    import shutil

    root = tmp_path / "demo"
    shutil.copytree(demo_data / "demo", root)
    before = load_index(root / "index.parquet")
    result = run_dups(root)
    assert not result.summary.changed and result.summary.groups == 0
    pd.testing.assert_series_equal(load_index(root / "index.parquet")["group"], before["group"])


def test_detector_meets_its_target_on_the_demo_images():
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as zf:
        images = [zf.read(n) for n in sorted(zf.namelist()) if n.endswith(".jpg")]
    plain = measure_detector(images, per_transform=60, seed=1)
    assert plain.meets_target(), plain.markdown()
    table = plain.table.set_index("transform")
    assert table.loc["flip", "recall"] == 0.0  # mirror images need mirrored matching ...
    mirrored = measure_detector(images, per_transform=60, seed=1, mirrored=True).table.set_index("transform")
    assert mirrored.loc["flip", "recall"] >= 0.98  # ... which finds them
