"""Plots are real PNGs written atomically; the summary shows the numbers given and fits one screen."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from podium.errors import PodiumError
from podium.scoring.metrics import classification_table, confusion
from podium.figures import draw_class_distribution, plot_class_distribution
from podium.training.monitor import best_epoch
from podium.reports.run_report import (draw_confusion, draw_cv_vs_public, draw_history, per_class_table_markdown,
                                       plot_confusion, plot_cv_vs_public, plot_history, summary_text)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# As Keras 3's CSVLogger writes it (keys sorted, epoch first, 0-based); ReduceLROnPlateau cut the LR twice.
HISTORY_CSV = """epoch,accuracy,learning_rate,loss,val_accuracy,val_loss
0,0.312,0.001,1.912,0.401,1.655
1,0.455,0.001,1.501,0.482,1.432
2,0.541,0.001,1.288,0.530,1.310
3,0.602,0.0003,1.121,0.571,1.201
4,0.651,0.0003,0.998,0.589,1.188
5,0.690,0.0003,0.887,0.596,1.205
6,0.722,0.00009,0.801,0.601,1.230
"""


@pytest.fixture
def history() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(HISTORY_CSV))


def _assert_png(path: Path, min_size: tuple[int, int] = (200, 150)) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        return image.size


def _only(folder: Path, names: list[str]) -> None:
    """No temp files (".<name>.*.tmp") may be left beside the output."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def _curves(ax) -> dict[str, tuple[list, list]]:
    """The labelled lines of a panel (matplotlib names unlabelled ones "_child<n>"): label -> (x, y)."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.lines if not line.get_label().startswith("_")}


def _cell_texts(ax) -> dict[tuple[int, int], str]:
    """The numbers written in a confusion matrix's cells: (row, col) -> text."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


# --------------------------------------------------------------------------------------- history


@pytest.mark.parametrize("monitor, mode, expected", [
    ("val_loss", "auto", 5), ("val_loss", "min", 5), ("val_accuracy", "auto", 7),
    ("val_accuracy", "max", 7), ("loss", "auto", 7), ("val_loss", "max", 1),
])
def test_best_epoch_follows_monitor_and_mode(history, monitor, mode, expected):
    assert best_epoch(history, monitor, mode) == expected


def test_best_epoch_skips_nan_and_reports_the_logged_epoch(history):
    resumed = history.assign(epoch=history["epoch"] + 10)
    resumed.loc[2, "val_loss"] = np.nan
    assert best_epoch(resumed, "val_loss") == 15  # logged epoch 14, printed by Keras as "Epoch 15"


def test_plot_history_writes_a_png_with_loss_metric_and_lr_panels(tmp_path, history):
    out = plot_history(history, tmp_path / "plots" / "fold-0.png", monitor="val_accuracy")
    assert out == tmp_path / "plots" / "fold-0.png"
    width, height = _assert_png(out)
    assert width / height == pytest.approx(15 / 4, rel=0.02)  # three 5x4 panels side by side
    _only(out.parent, ["fold-0.png"])
    assert [ax.get_title() for ax in draw_history(history).axes] == ["loss", "metrics", "learning rate"]


def test_the_history_figure_draws_every_column_and_marks_the_best_epoch(history):
    fig = draw_history(history, monitor="val_accuracy")
    loss, metrics, lr = fig.axes[:3]
    epochs = (history["epoch"] + 1).tolist()  # 1-based, as Keras prints them
    for ax, columns in ((loss, ["loss", "val_loss"]), (metrics, ["accuracy", "val_accuracy"]), (lr, ["learning_rate"])):
        curves = _curves(ax)
        assert sorted(curves) == columns
        for column in columns:
            assert curves[column] == (epochs, history[column].tolist())
        [marker] = [line for line in ax.lines if line.get_label().startswith("_")]  # the best epoch's vertical line
        assert list(marker.get_xdata()) == [7, 7]  # val_accuracy peaks (0.601) at the last epoch
    [best] = metrics.collections
    assert best.get_offsets().tolist() == [[7, 0.601]] and best.get_label() == "best: 0.601"
    assert fig.get_suptitle() == "training history: best epoch 7 by val_accuracy (max)"
    by_loss = draw_history(history)  # val_loss is lowest (1.188) at epoch 5
    assert by_loss.axes[0].collections[0].get_offsets().tolist() == [[5, 1.188]]
    assert not by_loss.axes[1].collections  # the marker sits on the monitored curve's panel only
    assert by_loss.axes[0].get_yscale() == "linear" and by_loss.axes[2].get_yscale() == "log"


def test_plot_history_without_learning_rate_has_two_panels(tmp_path, history):
    out = plot_history(history.drop(columns="learning_rate"), tmp_path / "h.png")
    width, height = _assert_png(out)
    assert width / height == pytest.approx(10 / 4, rel=0.02)
    _only(tmp_path, ["h.png"])
    assert [ax.get_title() for ax in draw_history(history.drop(columns="learning_rate")).axes] == ["loss", "metrics"]


def test_plot_history_refuses_an_unknown_monitor_and_keeps_the_old_file(tmp_path, history):
    out = tmp_path / "h.png"
    out.write_bytes(b"previous")
    with pytest.raises(PodiumError, match="no column 'val_f1'") as info:
        plot_history(history, out, monitor="val_f1")
    assert "'val_accuracy'" in info.value.received
    assert out.read_bytes() == b"previous"
    _only(tmp_path, ["h.png"])


def test_plot_history_refuses_an_unknown_mode(tmp_path, history):
    with pytest.raises(PodiumError, match="monitor mode"):
        plot_history(history, tmp_path / "h.png", mode="best")
    _only(tmp_path, [])


def test_plot_history_refuses_an_empty_history(tmp_path, history):
    with pytest.raises(PodiumError, match="empty"):
        plot_history(history.iloc[:0], tmp_path / "h.png")


# ------------------------------------------------------------------------------------- confusion


def test_plot_confusion_for_ten_classes(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 10, 300))
    cm = confusion(y_true, y_pred, 10)
    normalized = plot_confusion(cm, CLASSES, tmp_path / "cm.png")
    counts = plot_confusion(cm, CLASSES, tmp_path / "cm-counts.png", normalize=False)
    _assert_png(normalized)
    _assert_png(counts)
    _only(tmp_path, ["cm.png", "cm-counts.png"])

    expected = np.zeros((10, 10), dtype=int)  # counted here from the labels, not by podium
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    ax = draw_confusion(cm, CLASSES, normalize=False).axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert _cell_texts(ax) == {(r, c): str(expected[r, c]) for r, c in zip(*expected.nonzero())}  # no "0" drawn
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES  # rows: true class, in the names' order
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    shares = expected / expected.sum(axis=1, keepdims=True)
    ax = draw_confusion(cm, CLASSES).axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), shares)
    assert _cell_texts(ax) == {(r, c): f"{shares[r, c]:.2f}" for r, c in zip(*expected.nonzero())}
    assert ax.images[0].get_clim() == (0, 1)


@pytest.mark.filterwarnings("error")  # 0/0 in an empty row would warn (and draw NaN)
def test_plot_confusion_for_42_long_class_names_and_an_empty_row(tmp_path):
    names = [f"character_with_a_rather_long_name_{n:02d}" for n in range(42)]
    cm = np.random.default_rng(1).integers(0, 5, (42, 42))
    cm[7] = 0  # a class absent from this fold: its row must not become NaN
    out = plot_confusion(cm, names, tmp_path / "cm.png")
    _assert_png(out, min_size=(1000, 1000))
    ax = draw_confusion(cm, names).axes[0]
    drawn = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(drawn[7], np.zeros(42))  # the empty row: zeros, not NaN
    rows = [r for r in range(42) if r != 7]
    np.testing.assert_allclose(drawn[rows], cm[rows] / cm[rows].sum(axis=1, keepdims=True))
    assert not ax.texts  # 42 classes: too many for numbers in the cells


def test_plot_confusion_refuses_a_shape_that_does_not_match_the_names(tmp_path):
    with pytest.raises(PodiumError, match="do not match") as info:
        plot_confusion(np.zeros((3, 3)), CLASSES, tmp_path / "cm.png")
    assert "(3, 3)" in info.value.received
    _only(tmp_path, [])


# ---------------------------------------------------------------------------------- distribution


def test_plot_class_distribution_for_42_long_names(tmp_path):
    counts = {f"simpsons_character_number_{n:02d}_with_long_name": 10 + 37 * n for n in range(42)}
    out = plot_class_distribution(counts, tmp_path / "dist.png")
    width, height = _assert_png(out)
    assert height > width  # one bar per class, stacked vertically
    _only(tmp_path, ["dist.png"])
    ax = draw_class_distribution(counts).axes[0]
    largest_first = sorted(counts, key=counts.get, reverse=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == largest_first
    assert [bar.get_width() for bar in ax.patches] == [counts[name] for name in largest_first]
    assert [bar.get_y() + bar.get_height() / 2 for bar in ax.patches] == list(range(42))  # bar k on tick k
    assert [t.get_text() for t in ax.texts] == [str(counts[name]) for name in largest_first]
    assert ax.get_title() == f"images per class (42 classes, {sum(counts.values())} images)"


def test_class_bars_of_equal_counts_are_ordered_by_name():
    ax = draw_class_distribution({"b": 5, "a": 5, "c": 9}).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    assert [bar.get_width() for bar in ax.patches] == [9, 5, 5]


def test_plot_class_distribution_replaces_an_old_plot(tmp_path):
    out = tmp_path / "dist.png"
    out.write_bytes(b"stale")
    plot_class_distribution(dict(zip(CLASSES, range(100, 1100, 100))), out)
    _assert_png(out)
    _only(tmp_path, ["dist.png"])


def test_cv_vs_public_draws_one_point_per_submission_and_their_least_squares_line(tmp_path):
    cv, public, labels = [0.80, 0.82, 0.85, 0.90], [0.78, 0.81, 0.83, 0.86], ["a", "b", "c", "d"]
    out = plot_cv_vs_public(cv, public, labels, tmp_path / "cv.png")
    _assert_png(out)
    ax = draw_cv_vs_public(cv, public, labels).axes[0]
    assert ax.collections[0].get_offsets().tolist() == [list(point) for point in zip(cv, public)]
    assert [t.get_text() for t in ax.texts] == labels
    slope, intercept = np.polyfit(cv, public, 1)
    [line] = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [0.80, 0.90])
    np.testing.assert_allclose(line.get_ydata(), [slope * 0.80 + intercept, slope * 0.90 + intercept])
    assert ax.get_title() == "CV vs public score (4 submissions)"
    assert not draw_cv_vs_public([0.8], [0.7], ["only"]).axes[0].lines  # one point: no line to fit


def test_plot_class_distribution_refuses_no_classes(tmp_path):
    with pytest.raises(PodiumError, match="No classes"):
        plot_class_distribution({}, tmp_path / "dist.png")


# ------------------------------------------------------------------------------------------ tables


def test_per_class_table_markdown_has_one_row_per_class_and_the_averages():
    table = classification_table([0, 0, 1, 2], [0, 1, 1, 2], ["a|b", "dog", "frog"])
    markdown = per_class_table_markdown(table)
    lines = markdown.splitlines()
    assert lines[0] == "| class | precision | recall | f1 | support |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    assert lines[2] == "| a\\|b | 1.000 | 0.500 | 0.667 | 2 |"
    assert lines[3] == "| dog | 0.500 | 1.000 | 0.667 | 1 |"
    assert lines[-1].startswith("| weighted avg |") and lines[-1].endswith("| 4 |")
    assert len(lines) == 2 + 3 + 2


# ----------------------------------------------------------------------------------------- summary


def _run_summary(n_folds: int = 5, per_class=None, **changes) -> dict:
    folds = [{"fold": k, "best_epoch": 11 + k, "epochs_run": 20, "val_score": 0.8000 + k / 1000,
              "val_score_tta": 0.8100 + k / 1000, "monitor": "val_loss"} for k in range(n_folds)]
    summary = {"run_id": "baseline-1a2b3c4d", "competition": "demo", "backbone": "efficientnet_b0",
               "image_size": 224, "folds": folds, "cv_mean": 0.8123, "cv_std": 0.0042,
               "cv_tta_mean": 0.8234, "tta_views": ["identity", "hflip", "center_crop"],
               "wall_seconds": 3723.4, "metric": "accuracy",
               "submission": "submissions/demo/baseline-1a2b3c4d.csv", "per_class": per_class}
    summary.update(changes)
    return summary


def _demo_table() -> pd.DataFrame:
    """Recall by design: cat 0.25, dog 0.5, bird 0.75, the rest 1; truck never occurs (support 0)."""
    y_true, y_pred = [], []
    for index, name in enumerate(CLASSES[:-1]):
        hits = {"cat": 1, "dog": 2, "bird": 3}.get(name, 4)
        y_true += [index] * 4
        y_pred += [index] * hits + [0] * (4 - hits)
    return classification_table(y_true, y_pred, CLASSES)


def _assert_fits(text: str) -> list[str]:
    lines = text.splitlines()
    assert len(lines) <= 30
    assert max(len(line) for line in lines) <= 100
    return lines


def test_summary_shows_scores_with_and_without_tta_per_fold_and_best_epochs():
    text = summary_text(_run_summary(per_class=_demo_table()))
    lines = _assert_fits(text)
    for fragment in ["baseline-1a2b3c4d", "demo", "efficientnet_b0", "224", "1h 02m 03s",
                     "0.8123", "0.0042", "0.8234", "+0.0111", "identity, hflip, center_crop",
                     "submissions/demo/baseline-1a2b3c4d.csv"]:
        assert fragment in text
    for k in range(5):
        row = next(line for line in lines if line.split()[:1] == [str(k)])
        assert row.split()[:5] == [str(k), str(11 + k), "20", f"{0.8 + k / 1000:.4f}", f"{0.81 + k / 1000:.4f}"]


def test_summary_names_the_three_worst_classes_by_recall_in_order():
    lines = _assert_fits(summary_text(_run_summary(per_class=_demo_table())))
    start = next(i for i, line in enumerate(lines) if line.startswith("worst 3 classes by recall"))
    worst = [line.split()[0] for line in lines[start + 1:start + 4]]
    assert worst == ["cat", "dog", "bird"]  # truck (no examples) is not a "worst" class
    assert "recall 0.250" in lines[start + 1]


def test_summary_accepts_the_per_class_table_as_json_records():
    records = _demo_table().to_dict(orient="index")
    text = summary_text(_run_summary(per_class=records))
    assert "worst 3 classes by recall" in text and "cat" in text


def test_summary_without_tta_or_per_class_or_submission():
    summary = _run_summary(cv_tta_mean=None, tta_views=[], submission=None, per_class=None)
    for fold in summary["folds"]:
        fold["val_score_tta"] = None
    text = summary_text(summary)
    _assert_fits(text)
    assert "with TTA: not run" in text and "n/a" in text
    assert "worst" not in text and "submission" not in text  # train reports before a submission exists


def test_summary_fits_one_screen_with_many_folds_and_long_names():
    long_id = "a-very-long-experiment-name-" * 6 + "deadbeef"
    text = summary_text(_run_summary(n_folds=20, run_id=long_id, per_class=_demo_table(),
                                     submission="/" + "deep/" * 40 + "sub.csv"))
    lines = _assert_fits(text)
    assert any("deadbeef" in line for line in lines)  # the hash end of the run id survives shortening
    assert any("more folds" in line for line in lines)


def test_summary_of_a_lower_is_better_metric_says_so_and_calls_a_rising_tta_score_worse():
    """Log loss 0.40 without TTA, 0.43 with: the TTA made it worse, though the number went up."""
    text = summary_text(_run_summary(metric="log_loss", direction="min", cv_mean=0.40, cv_tta_mean=0.43,
                                     cv_oof=0.4211))
    _assert_fits(text)
    assert "CV log_loss (lower is better) 0.4000" in text and "(+0.0300, worse)" in text
    assert "OOF log_loss over every out-of-fold row (with TTA): 0.4211" in text
    better = summary_text(_run_summary(metric="log_loss", direction="min", cv_mean=0.43, cv_tta_mean=0.40))
    assert "(-0.0300)" in better and "worse" not in better
    assert "(+0.0111)" in summary_text(_run_summary())  # accuracy up: a gain, not worse
