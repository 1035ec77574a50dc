"""Images that go bad after `make data`, and sets that are odd as a whole: a deleted file is named with a
fix that works (checked: the fix is applied and the next step succeeds); a set of 8x8 images is one
sentence in `make eda`, while the unreadable file among them stays listed on its own."""

import shutil

import numpy as np
import pytest
from PIL import Image

from podium.cli.main import main
from podium.data.competitions import load_competition
from podium.data.cache import load_cached
from podium.data.index import build_index, load_index, save_index
from podium.data.eda import make_eda
from podium.errors import PodiumError
from tests_support import make_data
from podium.tasks import get_task


@pytest.fixture
def own_demo(demo_data, tmp_path):
    """A private copy of a prepared demo data_dir (the session one is shared and read-only)."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data, symlinks=True)
    return data


def test_an_image_deleted_after_indexing_is_named_and_make_data_force_brings_it_back(own_demo, tmp_path):
    root = own_demo / "demo"
    rows = load_index(root / "index.parquet")
    rows = rows[(rows["split"] == "train") & rows["ok"]].head(300)
    gone = [root / p for p in rows["path"].iloc[[3, 150]]]
    for path in gone:
        path.unlink()
    with pytest.raises(PodiumError) as caught:
        load_cached(rows, root, 32, tmp_path / "cache", progress=False)
    text = str(caught.value)
    assert "2 of 300 image files listed in the index are gone" in text
    assert all(str(path) in text for path in gone)
    assert "`make data FORCE=1`" in text and "run `make data` again" not in text
    make_data("demo", str(own_demo))  # what the old message advised: changes nothing
    assert not any(path.exists() for path in gone)
    make_data("demo", str(own_demo), force=True)  # the advice now given
    assert all(path.is_file() for path in gone)
    pixels = load_cached(rows, root, 32, tmp_path / "cache", progress=False)
    assert pixels.shape == (300, 32, 32, 3)


def _tiny_set(root, n_train=40, n_test=10, side=8):
    rng = np.random.default_rng(0)
    for k in range(n_train):
        folder = root / "train" / ("a" if k % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    (root / "test").mkdir()
    for k in range(n_test):
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(root / "test" / f"t{k}.png")


def test_eda_on_a_set_of_8x8_images_says_it_once_and_keeps_the_unreadable_file_visible(tmp_path, capsys):
    root = tmp_path / "data" / "tiny"
    _tiny_set(root)
    (root / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    spec = tmp_path / "tiny.yaml"
    spec.write_text("slug: tiny\n")
    index = build_index(load_competition(str(spec)), root, get_task("classification"))
    report = make_eda(index, root)
    assert report.summary["set_notes"][0].startswith("all 50 readable images are 8x8 (tiny: under 16 px")
    assert report.summary["odd_files"] == 1  # the broken file only, not 50 "tiny" rows
    markdown = (root / "eda" / "summary.md").read_text()
    assert "## The whole set" in markdown and "| train | a/broken | unreadable:" in markdown
    assert "tiny: 8x8" not in markdown
    save_index(index, root / "index.parquet")
    assert main(["eda", "--competition", str(spec), f"data_dir={tmp_path / 'data'}"]) == 0
    out = capsys.readouterr().out
    assert "eda: all 50 readable images are 8x8" in out and "1 odd or unreadable files (1 unreadable)" in out


def test_a_few_tiny_images_among_normal_ones_are_still_listed_one_by_one(tmp_path):
    root = tmp_path / "mixed"
    _tiny_set(root, n_train=20, n_test=4, side=32)
    Image.new("RGB", (8, 8)).save(root / "train" / "a" / "small.png")
    spec = tmp_path / "mixed.yaml"
    spec.write_text("slug: mixed\n")
    report = make_eda(build_index(load_competition(str(spec)), root, get_task("classification")), root)
    assert report.summary["set_notes"] == []
    assert "tiny: 8x8" in (root / "eda" / "summary.md").read_text()


def test_eda_after_an_image_was_deleted_names_it(own_demo):
    root = own_demo / "demo"
    index = load_index(root / "index.parquet")
    (root / index["path"].iloc[0]).unlink()
    with pytest.raises(PodiumError, match="1 of 2500 image files listed in the index are gone"):
        make_eda(index, root, root / "eda-out")


def test_dups_after_an_image_was_deleted_names_it(own_demo):
    from podium.data.duplicates import run_dups

    root = own_demo / "demo"
    index = load_index(root / "index.parquet")
    (root / index["path"].iloc[7]).unlink()
    with pytest.raises(PodiumError, match=r"1 of 2500 image files .* are gone.*make data FORCE=1"):
        run_dups(root)
