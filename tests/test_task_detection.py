"""Detection (podium.tasks.detection): many boxes of several classes per image, the generated shapes-detection
competition from files to a validated PredictionString submission whose mAP@0.5 on held-back images is well
above a fixed-box baseline's; the spec's classes, the threshold chosen out of fold and packaged."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium import artefacts
from podium.cli.main import main
from podium.config import load_config
from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.experiments.synthetic_files import write_detection_competition
from podium.kaggle.inference import package_run, predict_from_package
from podium.kaggle.submit import resolve_target, validate_file
from podium.scoring.registry import resolve_metric
from podium.submission.prediction_string import parse
from podium.tasks import OOF_OUTPUTS, get_task
from podium.tasks.base import finished_fold_dirs, read_oof_outputs
from podium.tasks.detection import POSTPROCESS, decoded, fused_boxes
from tests_support import make_data, untrained_fold

ROOT = Path(__file__).resolve().parents[1]
FILE_SIZE = (120, 96)  # width, height of the generated files


def _truth(frame: pd.DataFrame, ids: list[str], classes: list[str]) -> list[np.ndarray]:
    """Per image (k, 5) [class, x1, y1, x2, y2] in pixels from rows image_id, x, y, w, h, class."""
    out = []
    for image_id in ids:
        rows = frame[frame["image_id"] == image_id]
        xy = rows[["x", "y"]].to_numpy(float)
        boxes = np.concatenate([xy, xy + rows[["w", "h"]].to_numpy(float)], axis=1)
        out.append(np.concatenate([rows["class"].map(classes.index).to_numpy(float)[:, None], boxes], axis=1))
    return out


def _submitted(submission: pd.DataFrame, form) -> list[np.ndarray]:
    out = []
    for image_id, text in zip(submission["image_id"], submission["PredictionString"]):
        found = parse(text, form, image_id, FILE_SIZE)
        out.append(np.concatenate([found.classes[:, None], found.scores[:, None], found.boxes], axis=1)
                   if len(found) else np.zeros((0, 6)))
    return out


def _fixed_box_baseline(train: pd.DataFrame, n_images: int, classes: list[str]) -> list[np.ndarray]:
    """What a model that learned nothing about where objects are gives: the mean box, centred, of the most
    frequent class, once per image."""
    w, h = train["w"].mean(), train["h"].mean()
    cls = classes.index(train["class"].value_counts().index[0])
    cx, cy = FILE_SIZE[0] / 2, FILE_SIZE[1] / 2
    return [np.array([[cls, 1.0, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])] * n_images


def test_a_class_column_without_classes_is_refused_with_the_classes_found(tmp_path):
    raw = write_detection_competition(tmp_path / "raw", n_train=24, n_test=4, size=64, seed=3)
    spec_path = tmp_path / "spec.yaml"
    text = (ROOT / "src/podium/competitions/shapes-detection.yaml").read_text()
    spec_path.write_text(text.replace("classes: [ellipse, rectangle, triangle]\n", ""))
    with pytest.raises(PodiumError) as error:
        make_data(str(spec_path), tmp_path / "data", raw)
    assert "classes: [ellipse, rectangle, triangle]" in error.value.fix


def test_a_spec_without_class_column_names_its_one_class(tmp_path):
    text = (ROOT / "src/podium/competitions/shapes-detection.yaml").read_text()
    spec_path = tmp_path / "wheat.yaml"
    spec_path.write_text(text.replace("class_column: class\n", "").replace(
        "classes: [ellipse, rectangle, triangle]\n", "").replace("{box_format: xywh, has_class: true}",
                                                                   "global_wheat"))
    spec = load_competition(str(spec_path))
    assert spec.classes == ("object",) and not spec.resolved_prediction_string.has_class
    assert get_task("detection").class_names(pd.Series(["0 boxes", "1 box", "2-3 boxes"])) == []


def test_views_folds_and_runs_fuse_by_wbf_into_padded_boxes():
    """Two parts agreeing on a box fuse into one box at the mean score; a box only one part saw keeps half its
    score; the result is (N, max_boxes, 6) padded with class -1, and decoded() reads it back."""
    box = [0.2, 0.2, 0.6, 0.6]
    first = np.full((1, 4, 6), -1.0, np.float32)
    first[0, 0] = [1, 0.8, *box]
    first[0, 1] = [0, 0.6, 0.7, 0.7, 0.9, 0.9]
    second = np.full((1, 4, 6), -1.0, np.float32)
    second[0, 0] = [1, 0.6, 0.22, 0.2, 0.62, 0.6]
    fused = fused_boxes([first, second], None, iou=0.55, max_boxes=5)
    assert fused.shape == (1, 5, 6) and (fused[0, 2:, 0] == -1).all()
    rows = decoded(fused)[0]
    assert rows[:, 0].tolist() == [1, 0] and rows[:, 1] == pytest.approx([0.7, 0.3])
    assert rows[0, 2] == pytest.approx((0.2 * 0.8 + 0.22 * 0.6) / 1.4)


@pytest.mark.slow
def test_detection_files_to_a_submission_well_above_a_fixed_box(tmp_path):
    raw = write_detection_competition(tmp_path / "raw", n_train=240, n_test=60, size=96, file_size=FILE_SIZE, seed=7)
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0", "epochs=15"]  # the shipped 40: mAP@0.5 0.99
    assert main(["run", "--config", str(ROOT / "configs" / "shapes-detection.yaml"), "--source", str(raw),
                 *dirs]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    submission = pd.read_csv(tmp_path / "submissions" / "shapes-detection" / f"{run_dir.name}.csv", dtype=str,
                             keep_default_na=False)
    sample = pd.read_csv(raw / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert submission["image_id"].tolist() == sample["image_id"].tolist()

    spec = load_competition("shapes-detection")
    classes = list(spec.classes)
    answers = pd.read_csv(raw / "answers" / "test.csv")
    truth = _truth(answers, submission["image_id"].tolist(), classes)
    map50 = resolve_metric("map_at_iou(iou=0.5)")
    score = map50(truth, _submitted(submission, spec.resolved_prediction_string))
    baseline = map50(truth, _fixed_box_baseline(pd.read_csv(raw / "train.csv"), len(truth), classes))
    settings = json.loads((run_dir / "postprocess.json").read_text())
    print(f"\ndetection test mAP@0.5 {score:.3f}; fixed-box baseline {baseline:.3f}; settings {settings}")
    assert score > max(0.5, baseline + 0.3), f"mAP@0.5 {score:.3f} vs fixed box {baseline:.3f}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["metric"].startswith("map_at_iou(iou=0.5") and "map_50" in metrics["extra"]
    assert set(metrics["ap50_per_class"]) == set(classes) and (run_dir / "plots" / "boxes.png").is_file()


def test_an_inference_package_carries_the_threshold_make_predict_chose(tmp_path):
    """postprocess.json travels in the package and the offline kernel keeps only boxes scored at least its
    min_score (0.999: an untrained head's peaks are all below it, so every row is empty)."""
    cfg = load_config(ROOT / "configs" / "shapes-detection.yaml", {
        "data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"), "verbose": 0, "image_size": 32})
    make_data(cfg.competition, cfg.data_dir)
    task = get_task(cfg.task)
    untrained_fold(cfg, 3)
    (cfg.run_dir / POSTPROCESS).write_text(json.dumps({"min_score": 0.999, "nms_iou": 0.5, "max_boxes": 100}))
    package = package_run(cfg, task, tmp_path / "package", "tester/shapes-run") / cfg.run_id
    assert json.loads((package / POSTPROCESS).read_text())["min_score"] == 0.999
    out = tmp_path / "submission.csv"
    predict_from_package(package, task, cfg.data_root, out, tmp_path / "scratch", log=lambda line: None)
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    sample = pd.read_csv(cfg.data_root / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert submission["image_id"].tolist() == sample["image_id"].tolist()
    assert set(submission["PredictionString"]) == {""}
    assert task.rehearsal_problems(submission, sample, load_competition(cfg.competition), list(load_competition(cfg.competition).classes)) == []


@pytest.mark.slow
def test_runs_at_two_image_sizes_blend_by_fusing_their_boxes(tmp_path):
    """box_fusion=wbf saves fused boxes (N, max_boxes, 6) whatever the image size, so a 64 px and a 96 px run
    blend: each image's boxes fused with the fitted weights, written as a validated submission."""
    raw = write_detection_competition(tmp_path / "raw", n_train=100, n_test=12, size=96, seed=5)
    runs_dir = tmp_path / "runs"
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={runs_dir}", f"submissions_dir={tmp_path / 'subs'}",
            "verbose=0", "epochs=2", "folds=[0,1]"]
    for size in (64, 96):
        assert main(["run", "--config", str(ROOT / "configs" / "shapes-detection.yaml"), "--source", str(raw),
                     *dirs, f"image_size={size}"]) == 0
    first, second = sorted(p.name for p in runs_dir.iterdir())
    assert np.load(runs_dir / first / "fold-0" / "oof_outputs.npy").shape[1:] == (100, 6)
    assert main(["blend", "--runs", first, second, "--name", "sizes", "--runs-dir", str(runs_dir)]) == 0
    blend_dir = next(runs_dir.glob("blend-sizes-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"].startswith("map_at_iou") and 0 <= metrics["cv_mean"] <= 1
    assert np.load(blend_dir / "test_predictions.npy").shape == (12, 100, 6)
    assert json.loads((blend_dir / POSTPROCESS).read_text())["metric"].startswith("map_at_iou")
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    validate_file(target, get_task(target.competition.task))


def test_out_of_fold_outputs_chosen_on_are_read_checked(tmp_path):
    """What post-processing is chosen on (detection's threshold, the class masks' thresholds) is read through
    podium.artefacts: rows and outputs in fold order; a file made from other images, or damaged, is refused."""
    folds = []
    for k in (0, 1):
        fold_dir = tmp_path / f"fold-{k}"
        fold_dir.mkdir()
        pd.DataFrame({"id": [f"a{k}", f"b{k}"], "fold": k}).to_parquet(fold_dir / "oof.parquet")
        np.save(fold_dir / OOF_OUTPUTS, np.full((2, 3), k, np.float32))
        for name in ("oof.parquet", OOF_OUTPUTS):
            artefacts.stamp(fold_dir / name, kind="detections", images="these", remake="make train",
                            made_by="make train", folds=[{"fold": k, "finished": True}])
        (fold_dir / "metrics.json").write_text("{}")
        folds.append(fold_dir)
    assert finished_fold_dirs(tmp_path) == folds
    oof, outputs = read_oof_outputs(folds, "these")
    assert oof["id"].tolist() == ["a0", "b0", "a1", "b1"] and outputs[:, 0].tolist() == [0, 0, 1, 1]
    with pytest.raises(PodiumError, match="fold-0"):
        read_oof_outputs(folds, "other images")
    (folds[1] / OOF_OUTPUTS).write_bytes(b"damaged")
    with pytest.raises(PodiumError, match="fold-1"):
        read_oof_outputs(folds, "these")
