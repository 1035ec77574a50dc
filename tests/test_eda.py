"""`make eda` on inputs with known answers: the demo (10 classes x 200, 32x32) and a small skewed set."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from podium.data.competitions import load_competition
from podium.data.index import build_index, load_index
from podium.data.eda import make_eda
from podium.tasks import get_task
from tests_support import real_demo_jpegs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_report(demo_data, tmp_path_factory):
    root = demo_data / "demo"
    return make_eda(load_index(root / "index.parquet"), root, tmp_path_factory.mktemp("eda")), root


def test_demo_report_has_every_file(demo_report):
    report, _ = demo_report
    names = {path.name for path in report.files}
    assert names == {"class_distribution.png", "sizes.png", "channels.png", "samples.png", "odd_files.csv",
                     "summary.json", "summary.md"}
    for path in report.files:
        assert path.is_file() and path.stat().st_size > 100
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert json.loads((report.out_dir / "summary.json").read_text()) == report.summary


def test_demo_counts_sizes_and_channels_are_right(demo_report):
    report, root = demo_report
    classes = report.summary["classes"]
    assert classes["classes"] == 10 and classes["images"] == 2000
    assert set(classes["per_class"].values()) == {200} and classes["imbalance_ratio"] == 1.0
    assert report.summary["sizes"]["train"]["most_common_size"] == "32x32"
    assert report.summary["sizes"]["test"]["images"] == 500
    pixels = np.concatenate([np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3)
                             for p in sorted((root / "train").glob("*/*.jpg"))]).astype(np.float64)
    np.testing.assert_allclose(report.summary["channels"]["mean"], pixels.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(report.summary["channels"]["std"], pixels.std(axis=0), atol=0.01)
    markdown = (report.out_dir / "summary.md").read_text()
    assert "| cat | 200 |" in markdown and "imbalance ratio 1.00" in markdown
    assert "run `make dups`" in markdown


def test_skewed_classes_and_broken_files_are_reported(tmp_path):
    jpegs = real_demo_jpegs(12)
    root = tmp_path / "mini"
    for k in range(9):
        (root / "train" / "common").mkdir(parents=True, exist_ok=True)
        (root / "train" / "common" / f"{k}.jpg").write_bytes(jpegs[k])
    (root / "train" / "rare").mkdir()
    (root / "train" / "rare" / "0.jpg").write_bytes(jpegs[9])
    (root / "train" / "rare" / "1.jpg").write_bytes(jpegs[10])
    (root / "train" / "rare" / "2.jpg").write_bytes(jpegs[11][:200])  # truncated
    Image.new("RGB", (120, 20), (10, 200, 30)).save(root / "train" / "rare" / "wide.png")
    (root / "test").mkdir()
    (root / "test" / "t.jpg").write_bytes(jpegs[0])
    spec_path = tmp_path / "mini.yaml"
    spec_path.write_text("slug: mini\n")
    index = build_index(load_competition(str(spec_path)), root, get_task("classification"))
    report = make_eda(index, root)
    classes = report.summary["classes"]
    assert classes["per_class"] == {"common": 9, "rare": 3} and classes["imbalance_ratio"] == 3.0
    assert report.summary["unreadable"] == 1
    markdown = (root / "eda" / "summary.md").read_text()
    assert "consider class weights or oversampling" in markdown
    assert "rare/2" in markdown and "unreadable" in markdown and "extreme aspect: 120x20" in markdown
    # the test copy of train image 0 is a byte copy: the index groups it, the report counts it
    assert report.summary["duplicates"]["train_test_groups"] == 1
