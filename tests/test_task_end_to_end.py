"""Segmentation and localization competitions from files to a validated submission, through the real
`podium run` (data -> folds -> train -> predict), scored against the generated test set's held-back
answers. The images are 96 x 80 files and the model works at 32 px, so masks and boxes must be
brought back to each image's own size to score at all. One test image is corrupt, as on Kaggle."""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium import boxes as geometry
from podium.models import localization
from podium.data import rle
from podium.cli.main import main
from podium.scoring.segmentation import airbus_score_of_rows
from podium.submission.masks import mask_submission_problems
from podium.experiments.synthetic_files import write_shapes_competition

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 96, 80
CORRUPT = "test-zz-corrupt.png"


def _raw_files(tmp_path: Path, seed: int, object_probability: float, sample: str) -> Path:
    raw = write_shapes_competition(tmp_path / "raw", n_train=240, n_test=40, size=64, file_size=(WIDTH, HEIGHT),
                                   seed=seed, object_probability=object_probability)
    with zipfile.ZipFile(raw / "test.zip", "a") as archive:
        archive.writestr(f"test/{CORRUPT}", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header, then nothing
    frame = pd.read_csv(raw / sample, dtype=str, keep_default_na=False)
    extra = frame.iloc[[0]].assign(ImageId=CORRUPT)
    pd.concat([frame, extra], ignore_index=True).to_csv(raw / sample, index=False)
    return raw


def _run(tmp_path: Path, config: str, raw: Path, *overrides: str) -> tuple[str, Path]:
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0", "image_size=32"]
    assert main(["run", "--config", str(ROOT / "configs" / config), "--source", str(raw), *dirs, *overrides]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    return run_dir.name, run_dir


@pytest.mark.slow
def test_segmentation_files_to_an_airbus_submission_at_the_images_own_size(tmp_path, capsys):
    raw = _raw_files(tmp_path, seed=5, object_probability=0.8, sample="sample_submission.csv")
    run_id, run_dir = _run(tmp_path, "shapes-segmentation.yaml", raw, "epochs=25", "unet_filters=8")
    out = capsys.readouterr().out
    assert "1 unreadable test image(s) got an empty row" in out
    submission = pd.read_csv(tmp_path / "submissions" / "shapes-segmentation" / f"{run_id}.csv", dtype=str,
                             keep_default_na=False)
    sample = pd.read_csv(raw / "sample_submission.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(raw / "answers" / "test_ship_segmentations.csv", dtype=str, keep_default_na=False)
    shapes = {image_id: (HEIGHT, WIDTH) for image_id in truth["ImageId"]}
    assert mask_submission_problems(submission, sample, "ImageId", "EncodedPixels", shapes) == []
    assert list(dict.fromkeys(submission["ImageId"])) == sample["ImageId"].tolist()
    assert submission.loc[submission.ImageId == CORRUPT, "EncodedPixels"].tolist() == [""]

    # Predicting nothing scores the share of empty images (about 0.2); masks left at 32 px would not decode.
    score = airbus_score_of_rows(submission, truth, shapes)
    assert score > 0.5, f"Airbus score {score:.3f} of the submission on the held-back test answers"
    with_objects = truth.loc[truth.EncodedPixels != "", "ImageId"].iloc[0]
    predicted = rle.image_mask(submission.loc[submission.ImageId == with_objects, "EncodedPixels"], (HEIGHT, WIDTH))
    true = rle.image_mask(truth.loc[truth.ImageId == with_objects, "EncodedPixels"], (HEIGHT, WIDTH))
    assert (predicted & true).sum() > 0.5 * true.sum()  # the prediction sits on the ellipse, at full size
    assert (tmp_path / "data" / "shapes-segmentation" / "index.parquet").is_file()
    assert "airbus_f2" in (run_dir / "summary.txt").read_text()


@pytest.mark.slow
def test_localization_files_to_pixel_boxes_that_beat_a_centre_box(tmp_path, capsys):
    raw = _raw_files(tmp_path, seed=6, object_probability=1.0, sample="sample_submission_boxes.csv")
    run_id, run_dir = _run(tmp_path, "shapes-localization.yaml", raw, "epochs=20")
    out = capsys.readouterr().out
    assert "1 unreadable test image(s) got the sample submission's placeholder row" in out
    submission = pd.read_csv(tmp_path / "submissions" / "shapes-localization" / f"{run_id}.csv", dtype=str)
    sample = pd.read_csv(raw / "sample_submission_boxes.csv", dtype=str)
    assert submission["ImageId"].tolist() == sample["ImageId"].tolist()
    truth = pd.read_csv(raw / "answers" / "test_boxes.csv")
    merged = truth.merge(submission.astype({c: float for c in ("x1", "y1", "x2", "y2")}), on="ImageId",
                         suffixes=("_true", ""))
    scale = np.array([WIDTH, HEIGHT, WIDTH, HEIGHT], "float32")
    true = merged[["x1_true", "y1_true", "x2_true", "y2_true"]].to_numpy("float32") / scale
    pred = merged[["x1", "y1", "x2", "y2"]].to_numpy("float32") / scale
    assert (pred >= 0).all() and (pred <= 1).all()  # pixels of the 96 x 80 image, not of the 32 px input
    iou = geometry.box_iou(true, pred).mean()
    baseline = geometry.box_iou(true, geometry.centre_box_baseline(true)).mean()
    assert iou > baseline + 0.2, f"box IoU {iou:.3f} vs centre-box baseline {baseline:.3f}"
    assert (merged["label"] == merged["label_true"]).mean() > 0.8
    assert (run_dir / "plots" / "boxes.png").stat().st_size > 1000
