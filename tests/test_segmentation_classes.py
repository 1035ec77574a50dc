"""Segmentation with several classes (task: segmentation with a spec's `class_masks`): the spec keys, the
masks read from pair rows, the C-channel heads and losses, the per-class post-processing at the image's size,
the pair submission's checks, and the generated shapes-multiclass competition from files to a validated
submission that beats predicting every mask empty, then blended with a second run."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.cli.main import main
from podium.config import ExperimentConfig, load_config
from podium.data.class_masks import (EMPTY, class_mask_labels, class_mask_problems, load_class_masks,
                                     masks_from_rows, spec_columns)
from podium.data.competitions import load_competition
from podium.data.rle import encode
from podium.errors import PodiumError
from podium.experiments.synthetic_files import write_class_mask_competition
from podium.scoring.class_postprocess import masks_at_size
from podium.scoring.segmentation import mean_dice_pairs
from podium.submission.masks import class_mask_submission_problems, validate_class_mask_submission
from podium.tasks import get_task
from podium.tasks.segmentation import POSTPROCESS, postprocess_record

ROOT = Path(__file__).resolve().parents[1]
SPEC_LINES = ["slug: clouds-like", "task: segmentation", "layout: csv", "labels_csv: train.csv",
              "id_column: Image_Label", "submission_id_column: Image_Label", "submission_label_column: EncodedPixels"]


def _spec(tmp_path, *lines):
    path = tmp_path / "spec.yaml"
    path.write_text("\n".join([*SPEC_LINES, *lines]) + "\n")
    return load_competition(str(path))


# ---- spec ------------------------------------------------------------------------------------------------
def test_spec_keys_are_checked_and_the_metric_defaults_to_the_mean_dice_over_pairs(tmp_path):
    spec = _spec(tmp_path, "classes: [Fish, Flower, Gravel, Sugar]", "class_masks: overlapping")
    assert spec.classes == ("Fish", "Flower", "Gravel", "Sugar") and spec.resolved_metric.name == "mean_dice_pairs"
    assert load_competition("shapes-multiclass").classes == ("1", "2")
    assert load_competition("shapes-segmentation").class_masks == ""  # one mask per image, as before
    with pytest.raises(PodiumError, match="unknown class_masks 'softmax'") as error:
        _spec(tmp_path, "classes: [1, 2]", "class_masks: softmax")
    assert "exclusive" in error.value.expected and "overlapping" in error.value.expected
    with pytest.raises(PodiumError, match="without a segmentation task"):
        _spec(tmp_path, "class_masks: exclusive")  # no classes
    with pytest.raises(PodiumError, match="without a segmentation task"):
        _spec(tmp_path, "classes: [a_b, c]", "class_masks: exclusive")  # `_` joins image and class
    _spec(tmp_path, "classes: [a_b, c]", "class_masks: exclusive", "class_column: ClassId",
          "submission_class_column: ClassId")  # separate columns: a `_` is fine
    with pytest.raises(PodiumError, match="class_column without class_masks"):
        _spec(tmp_path, "class_column: ClassId")
    with pytest.raises(PodiumError, match="scores class masks with dice"):
        _spec(tmp_path, "classes: [1, 2]", "class_masks: exclusive", "metric: dice")


# ---- data ------------------------------------------------------------------------------------------------
def _clouds_files(tmp_path, rows):
    (tmp_path / "train.csv").write_text("Image_Label,EncodedPixels\n" + "\n".join(rows) + "\n")
    return _spec(tmp_path, "classes: [Fish, Sugar]", "class_masks: exclusive")


def test_index_labels_name_the_rarest_class_held_and_make_data_checks_every_row(tmp_path):
    spec = _clouds_files(tmp_path, ["a.jpg_Fish,1 3", "a.jpg_Sugar,5 2", "b.jpg_Fish,1 1", "b.jpg_Sugar,",
                                    "c.jpg_Fish,", "c.jpg_Sugar,"])
    (tmp_path / "train").mkdir()
    for name in ("a.jpg", "d.jpg", ".e.jpg", "f.txt"):  # d.jpg: a train image the CSV does not name
        (tmp_path / "train" / name).write_bytes(b"")
    labels = class_mask_labels(spec, tmp_path)
    assert labels.to_dict("list") == {"Image_Label": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
                                      "label": ["Sugar", "Fish", EMPTY, EMPTY]}
    task = get_task("segmentation")
    assert task.class_names(labels["label"]) == ["Fish", "Sugar"]
    assert task.label_indices(labels["label"], ["Fish", "Sugar"]).tolist() == [1, 0, 0, 0]
    assert task.class_names(pd.Series(["object", "empty"])) == ["empty", "object"]  # one class: as before
    assert class_mask_problems(spec, tmp_path, {"a.jpg": (4, 2), "b.jpg": (4, 2), "c.jpg": (4, 2)}) == []

    bad = _clouds_files(tmp_path, ["a.jpg_Fish,1 3", "a.jpg_Sugar,2 2", "b.jpg_Gravel,1 1", "c.jpg_Fish,7 9"])
    problems = class_mask_problems(bad, tmp_path, {"a.jpg": (4, 2), "b.jpg": (4, 2), "c.jpg": (4, 2)})
    assert len(problems) == 3, problems
    assert "pixels another class holds" in problems[0] and "unknown class 'Gravel'" in problems[1]
    assert "row 3 ('c.jpg', class Fish)" in problems[2]


def test_class_masks_load_at_the_model_size_one_channel_per_class_and_cached(tmp_path):
    full = np.zeros((8, 8, 2), np.uint8)
    full[:4, :4, 0] = 1
    full[4:, 4:, 1] = 1
    (tmp_path / "train.csv").write_text(f"ImageId,ClassId,EncodedPixels\na.png,1,{encode(full[..., 0])}\n"
                                        f"a.png,2,{encode(full[..., 1])}\nb.png,1,\n")
    spec = _spec(tmp_path, "classes: [1, 2]", "class_masks: overlapping", "id_column: ImageId",
                 "class_column: ClassId")
    assert spec_columns(spec) == {"id_column": "ImageId", "image_column": "ImageId", "class_column": "ClassId"}
    rows = pd.DataFrame({"id": ["a.png", "b.png"], "height": [8, 8], "width": [8, 8]})
    masks = load_class_masks(spec, tmp_path, rows, 4, tmp_path / "cache", progress=False)
    assert masks.shape == (2, 4, 4, 2) and masks.dtype == np.uint8
    assert masks[0, :2, :2, 0].all() and masks[0, 2:, 2:, 1].all() and masks[0].sum() == 8 and not masks[1].any()
    again = load_class_masks(spec, tmp_path, rows, 4, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again, masks)
    assert len(list((tmp_path / "cache").glob("class-masks-4-*.u8"))) == 1


# ---- model, loss, augmentation -----------------------------------------------------------------------------
@pytest.mark.parametrize("exclusive", [True, False])
def test_heads_output_a_probability_channel_per_class_and_reload_without_custom_objects(tmp_path, exclusive):
    import keras

    from podium.models.segmentation import build_segmenter

    cfg = ExperimentConfig(task="segmentation", backbone="tiny_cnn", image_size=32, weights="none", unet_filters=8,
                           monitor="val_dice")
    model = build_segmenter(cfg, 3, exclusive)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = np.asarray(model.predict(images, verbose=0))
    assert out.shape == (2, 32, 32, 3) and out.min() >= 0 and out.max() <= 1
    if exclusive:  # the softmax's background is what the classes leave
        assert out.sum(axis=-1).max() < 1.0
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(again.predict(images, verbose=0)), out, atol=1e-6)


@pytest.mark.parametrize("exclusive", [True, False])
@pytest.mark.parametrize("name", ["bce", "dice", "bce_dice", "focal"])
def test_class_mask_losses_prefer_the_right_masks_and_metrics_are_the_mean_over_pairs(exclusive, name):
    import keras

    from podium.training.seg_losses import class_mask_metrics, make_class_mask_loss, pair_dice

    truth = np.zeros((2, 8, 8, 2), np.float32)
    truth[0, :4, :4, 0] = 1
    truth[1, 4:, :, 1] = 1
    right = np.clip(truth * 0.9 + 0.02, 0, 1)
    wrong = right[..., ::-1].copy()
    loss = make_class_mask_loss(name, 2.0, exclusive)
    assert float(keras.ops.mean(loss(truth, right))) < float(keras.ops.mean(loss(truth, wrong)))
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
    half = truth.copy()
    half[0, :4, :2, 0] = 0
    assert float(keras.ops.mean(pair_dice(truth, half))) == pytest.approx(mean_dice_pairs(truth, half))
    assert [m.name for m in class_mask_metrics()] == ["dice", "iou"]
    with pytest.raises(PodiumError, match="Unknown segmentation loss"):
        make_class_mask_loss("lovasz")


@pytest.mark.parametrize("exclusive", [True, False])
def test_saturated_predictions_give_a_finite_loss_and_gradient(exclusive):
    import tensorflow as tf

    from podium.training.seg_losses import make_class_mask_loss

    truth = np.zeros((1, 4, 4, 2), np.float32)
    truth[0, :2, :2, 0] = 1
    saturated = tf.Variable(truth.copy())  # probabilities of exactly 0 and 1
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(make_class_mask_loss("bce_dice", 2.0, exclusive)(truth, saturated))
    assert np.isfinite(float(value)) and np.isfinite(tape.gradient(value, saturated).numpy()).all()


def test_augmentation_moves_every_class_channel_with_the_image():
    from podium.training.augment_pairs import MaskAugmenter

    images = np.zeros((4, 16, 16, 3), np.float32)
    images[:, :, :4] = 255.0
    masks = np.zeros((4, 16, 16, 2), np.float32)
    masks[:, :, :4, 0] = 1
    masks[:, :8, :4, 1] = 1
    moved_images, moved = MaskAugmenter(["flip"], 16, seed=0)(images, masks)
    assert moved.shape == (4, 16, 16, 2)
    for image, mask in zip(moved_images, moved):
        np.testing.assert_array_equal(mask[..., 0] > 0, image[..., 0] > 127)
        assert mask[..., 1].sum() == 32 and (mask[..., 1] <= mask[..., 0]).all()


def test_tta_views_are_undone_on_every_class_channel():
    from podium.training.tta import undo_view

    masks = np.zeros((1, 8, 8, 2), np.float32)
    masks[0, :2, :3, 0] = 1
    masks[0, 5:, 6:, 1] = 1
    for view, seen in (("hflip", masks[:, :, ::-1]), ("vflip", masks[:, ::-1]), ("rot90", np.rot90(masks, 1, (1, 2))),
                       ("transpose", masks.transpose(0, 2, 1, 3))):
        np.testing.assert_array_equal(undo_view(view, np.ascontiguousarray(seen)), masks)


# ---- post-processing and submission -------------------------------------------------------------------------
def test_masks_at_size_scale_the_minimum_size_and_keep_exclusive_classes_apart():
    probabilities = np.zeros((8, 8, 2), np.float32)
    probabilities[:4, :4, 0] = 0.9
    probabilities[:4, :4, 1] = 0.6  # also above its threshold: the likelier class keeps the pixels
    probabilities[6, 6, 1] = 0.9  # one model pixel: 4 image pixels at 16 x 16
    masks = masks_at_size(probabilities, 16, 16, [0.5, 0.5], [0, 2], exclusive=True)
    assert masks.shape == (16, 16, 2) and not (masks[..., 0] & masks[..., 1]).any()
    assert masks[:6, :6, 0].all() and not masks[..., 1].any()  # class 2's speck is under 2 model pixels
    overlapping = masks_at_size(probabilities, 16, 16, [0.5, 0.5], [0, 0], exclusive=False)
    assert overlapping[2, 2].all() and overlapping[..., 1].sum() > masks[..., 1].sum()


def test_pair_submission_problems_are_named_before_anything_is_written(tmp_path):
    sample = pd.DataFrame({"ImageId_ClassId": ["a.png_1", "a.png_2", "b.png_1", "b.png_2"], "EncodedPixels": "1 1"})
    shapes = {"a.png": (4, 4), "b.png": (4, 4)}
    good = sample.assign(EncodedPixels=["1 4", "5 2", "", ""])
    check = dict(classes=["1", "2"], shapes=shapes, exclusive=True, id_column="ImageId_ClassId",
                 rle_column="EncodedPixels")
    assert class_mask_submission_problems(good, sample, **check) == []
    bad = pd.DataFrame({"ImageId_ClassId": ["a.png_1", "a.png_2", "a.png_2", "b.png_3", "c.png_1"],
                        "EncodedPixels": ["1 4", "3 2", "3 2", "", "15 9"]})
    problems = class_mask_submission_problems(bad, sample, **check)
    text = " ".join(problems)
    for part in ("unknown class '3'", "on more than one row", "without a row: 'b.png_1'", "not in the sample",
                 "two classes share a pixel"):
        assert part in text, (part, problems)
    assert "invalid run-length" in " ".join(class_mask_submission_problems(
        good.assign(EncodedPixels=["1 99", "", "", ""]), sample, **check))
    assert not [p for p in class_mask_submission_problems(good.assign(EncodedPixels=["1 4", "3 2", "", ""]), sample,
                                                          **{**check, "exclusive": False})]
    with pytest.raises(PodiumError, match="would be refused"):
        validate_class_mask_submission(bad, sample, **check)
    spec = load_competition("shapes-multiclass")
    rehearsal = get_task("segmentation").rehearsal_problems(bad, sample, spec, ["1", "2"])
    assert any("unknown class" in p for p in rehearsal)


def test_postprocess_is_chosen_honestly_even_on_one_fold_and_a_blend_saves_its_own(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.zeros((12, 16, 16, 2), np.uint8)
    truth[::2, 2:8, 2:8, 0] = 1
    truth[1::3, 8:14, 8:14, 1] = 1
    probabilities = np.clip(truth * 0.45 + rng.uniform(0, 0.3, truth.shape), 0, 1).astype(np.float32)
    record = postprocess_record(probabilities, truth, np.zeros(12), ["1", "2"], "test rows")
    assert record["honest_split"].startswith("two halves") and set(record["by_class"]) == {"1", "2"}
    assert max(record["thresholds"]) < 0.5 and record["honest_score"] > record["plain_score"]
    task = get_task("segmentation")
    assert task.blend_files([], tmp_path, None, truth, probabilities, np.arange(12) % 3, ["1", "2"])["postprocess"]
    assert json.loads((tmp_path / POSTPROCESS).read_text())["classes"] == ["1", "2"]
    assert task.blend_files([], tmp_path / "x", None, truth, probabilities, np.zeros(12), ["empty", "object"]) == {}


def test_an_inference_package_carries_the_postprocess_make_predict_uses(tmp_path):
    """postprocess.json travels in the package; the offline kernel writes every pair with it (class 1 at
    threshold 0 covers each image, class 2 at 1 is empty: visible in every row)."""
    from podium.kaggle.inference import package_run, predict_from_package
    from tests_support import make_data, untrained_fold

    cfg = load_config(ROOT / "configs" / "shapes-multiclass.yaml", {
        "data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"), "verbose": 0, "image_size": 32})
    make_data(cfg.competition, cfg.data_dir)
    task = get_task(cfg.task)
    untrained_fold(cfg, 2)
    chosen = {"classes": ["1", "2"], "thresholds": [0.0, 1.0], "min_sizes": [0, 0]}
    (cfg.run_dir / POSTPROCESS).write_text(json.dumps(chosen))
    package = package_run(cfg, task, tmp_path / "package", "tester/shapes-run") / cfg.run_id
    assert json.loads((package / POSTPROCESS).read_text())["thresholds"] == [0.0, 1.0]
    out = tmp_path / "submission.csv"
    predict_from_package(package, task, cfg.data_root, out, tmp_path / "scratch", log=lambda line: None)
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    sample = pd.read_csv(cfg.data_root / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert submission["ImageId_ClassId"].tolist() == sample["ImageId_ClassId"].tolist()
    first = submission["ImageId_ClassId"].str.endswith("_1")
    assert set(submission.loc[first, "EncodedPixels"]) == {"1 4096"}
    assert set(submission.loc[~first, "EncodedPixels"]) == {""}
    assert task.rehearsal_problems(submission, sample, load_competition(cfg.competition), ["1", "2"]) == []


# ---- end to end ----------------------------------------------------------------------------------------------
def _held_back_scores(raw: Path, submission: Path) -> tuple[float, float]:
    """(mean Dice over pairs of the submission, of every mask empty) on the answers kept apart."""
    answers = pd.read_csv(raw / "answers" / "test.csv", dtype=str, keep_default_na=False)
    predicted = pd.read_csv(submission, dtype=str, keep_default_na=False)
    truth, masks = masks_from_rows(answers, ["1", "2"], (64, 64)), masks_from_rows(predicted, ["1", "2"], (64, 64))
    true = np.stack([truth[i] for i in truth])
    return mean_dice_pairs(true, np.stack([masks[i] for i in truth])), mean_dice_pairs(true, np.zeros_like(true))


@pytest.mark.slow
def test_multiclass_files_to_a_submission_that_beats_empty_masks(tmp_path, capsys):
    raw = write_class_mask_competition(tmp_path / "raw", n_train=400, n_test=60, size=64, seed=7)
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0", "epochs=12"]  # 25 in the config
    assert main(["run", "--config", str(ROOT / "configs" / "shapes-multiclass.yaml"), "--source", str(raw),
                 *dirs]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    path = tmp_path / "submissions" / "shapes-multiclass" / f"{run_dir.name}.csv"
    submission = pd.read_csv(path, dtype=str, keep_default_na=False)
    sample = pd.read_csv(raw / "sample_submission.csv", dtype=str, keep_default_na=False)
    assert submission["ImageId_ClassId"].tolist() == sample["ImageId_ClassId"].tolist()
    dice, empty = _held_back_scores(raw, path)
    chosen = json.loads((run_dir / POSTPROCESS).read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"\nmulticlass validation mean Dice over pairs {metrics['cv_mean']:.3f}; held-back {dice:.3f}, every mask "
          f"empty {empty:.3f}; chosen {chosen['by_class']}, honest {chosen['honest_score']:.3f} vs 0.5 "
          f"{chosen['plain_score']:.3f}")
    assert metrics["metric"] == "mean_dice_pairs" and dice > empty + 0.25, (dice, empty)
    assert set(chosen["by_class"]) == {"1", "2"}


@pytest.mark.slow
def test_two_multiclass_runs_blend_per_class_into_a_validated_submission(tmp_path, capsys):
    from podium.kaggle.submit import resolve_target, validate_file

    raw = write_class_mask_competition(tmp_path / "raw", n_train=120, n_test=20, size=64, seed=5)
    runs_dir = tmp_path / "runs"
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={runs_dir}", f"submissions_dir={tmp_path / 'subs'}",
            "verbose=0", "image_size=32", "epochs=2", "folds=[0,1]"]
    for seed in (1, 2):
        assert main(["run", "--config", str(ROOT / "configs" / "shapes-multiclass.yaml"), "--source", str(raw),
                     *dirs, f"seed={seed}"]) == 0
    first, second = sorted(p.name for p in runs_dir.iterdir())
    assert np.load(runs_dir / first / "fold-0" / "oof_outputs.npy").shape[1:] == (32, 32, 2)
    assert main(["blend", "--runs", first, second, "--name", "pair", "--runs-dir", str(runs_dir)]) == 0
    blend_dir = next(runs_dir.glob("blend-pair-*"))
    metrics = json.loads((blend_dir / "metrics.json").read_text())
    assert metrics["metric"] == "mean_dice_pairs" and 0 <= metrics["cv_mean"] <= 1
    w = np.array(list(metrics["weights"].values()))
    expected = sum(weight * np.load(runs_dir / run / "test_predictions.npy").astype("float64")
                   for weight, run in zip(w, (first, second)))
    np.testing.assert_allclose(np.load(blend_dir / "test_predictions.npy"), expected, atol=1e-3)
    assert json.loads((blend_dir / POSTPROCESS).read_text())["classes"] == ["1", "2"]
    target = resolve_target(run_id=blend_dir.name, runs_dir=str(runs_dir))
    validate_file(target, get_task(target.competition.task))


@pytest.mark.slow
def test_overlapping_classes_in_separate_columns_go_from_files_to_a_validated_submission(tmp_path):
    """Understanding Clouds' form: class names, the labels CSV's image and class in two columns, the sample's
    `Image_Label` ids joined, a sigmoid per class (class_masks: overlapping)."""
    raw = write_class_mask_competition(tmp_path / "raw", n_train=80, n_test=10, size=64, seed=3)
    names = {"1": "ellipse", "2": "rectangle"}
    train = pd.read_csv(raw / "train.csv", dtype=str, keep_default_na=False)
    image, class_id = train["ImageId_ClassId"].str.rsplit("_", n=1, expand=True).T.to_numpy()
    pd.DataFrame({"Image": image, "Label": [names[c] for c in class_id],
                  "EncodedPixels": train["EncodedPixels"]}).to_csv(
        raw / "train.csv", index=False)
    sample = pd.read_csv(raw / "sample_submission.csv", dtype=str, keep_default_na=False)
    image, class_id = sample["ImageId_ClassId"].str.rsplit("_", n=1, expand=True).T.to_numpy()
    pd.DataFrame({"Image_Label": [f"{i}_{names[c]}" for i, c in zip(image, class_id)], "EncodedPixels": "1 1"}).to_csv(
        raw / "sample_submission.csv", index=False)
    spec = tmp_path / "shapes-clouds.yaml"
    spec.write_text("\n".join(["slug: shapes-clouds", "task: segmentation", "layout: csv",
                               "archives: [train.zip, test.zip, train.csv, sample_submission.csv]",
                               "labels_csv: train.csv", "id_column: Image", "class_column: Label",
                               "submission_id_column: Image_Label", "submission_label_column: EncodedPixels",
                               "submission_id: filename", "classes: [ellipse, rectangle]",
                               "class_masks: overlapping"]) + "\n")
    dirs = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0", "epochs=2", "image_size=32",
            f"competition={spec}"]
    assert main(["run", "--config", str(ROOT / "configs" / "shapes-multiclass.yaml"), "--source", str(raw),
                 *dirs]) == 0
    run_dir = next((tmp_path / "runs").iterdir())
    submission = pd.read_csv(tmp_path / "submissions" / "shapes-clouds" / f"{run_dir.name}.csv", dtype=str,
                             keep_default_na=False)
    assert submission["Image_Label"].tolist() == pd.read_csv(raw / "sample_submission.csv")["Image_Label"].tolist()
    assert json.loads((run_dir / POSTPROCESS).read_text())["classes"] == ["ellipse", "rectangle"]
    model_output = np.load(run_dir / "fold-0" / "oof_outputs.npy")
    assert model_output.shape[1:] == (32, 32, 2)
