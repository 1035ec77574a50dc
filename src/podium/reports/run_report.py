"""What a run did, at a glance: training curves, confusion matrix, class balance, a one-screen summary.

Plots are drawn and saved through podium.figures (private Agg figures, atomic PNGs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, NotRequired, Sequence, TypedDict

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from podium.errors import PodiumError
from podium.figures import new_figure, save_png, tick_size
from podium.scoring.metrics import AVERAGE_ROWS
from podium.training.monitor import best_row, check_history, epoch_numbers, resolve_mode

DPI = 110
LR_COLUMNS = ("learning_rate", "lr")  # Keras 3 logs "learning_rate"; Keras 2 logged "lr"
ANNOTATE_UP_TO = 20  # confusion matrices with more classes are unreadable with numbers in the cells
SUMMARY_WIDTH, SUMMARY_LINES = 100, 30
SHOWN_FOLDS, WORST_CLASSES = 15, 3


# ------------------------------------------------------------------------------------ the run's shape


class FoldSummary(TypedDict):
    """One trained fold, as runners/train.py reports it."""

    fold: int
    best_epoch: int  # the epoch whose weights were kept, 1-based (history.csv's epoch + 1)
    epochs_run: int
    val_score: float  # competition metric on the fold's validation rows, single view
    val_score_tta: float | None  # the same with test-time augmentation; None when TTA was not run
    monitor: str  # what picked best_epoch, e.g. "val_loss"


class RunSummary(TypedDict):
    """Everything summary_text shows; the shape of runs/<run-id>/metrics.json.

    per_class is a classification_table DataFrame or its JSON form, {class: {precision, recall, f1,
    support}} (DataFrame.to_dict(orient="index")); the worst classes by recall come from it.
    """

    run_id: str
    competition: str
    backbone: str
    image_size: int
    folds: list[FoldSummary]
    cv_mean: float
    cv_std: float
    cv_tta_mean: float | None  # None when TTA was not run
    tta_views: list[str]  # names of the TTA views averaged; [] for none
    wall_seconds: float
    metric: NotRequired[str]  # the competition metric's name; "score" when absent
    submission: NotRequired[str | None]  # path of the written submission, if any
    per_class: NotRequired[pd.DataFrame | Mapping[str, Mapping[str, float]] | None]
    extra: NotRequired[Mapping[str, float]]  # task numbers beside the metric, mean over folds (Airbus F2, ...)


# ------------------------------------------------------------------------------------------- history


def plot_history(history: pd.DataFrame, out_path: str | os.PathLike, monitor: str = "val_loss",
                 mode: str = "auto") -> Path:
    """Loss, metric and learning-rate panels of a Keras CSVLogger history, the best epoch marked."""
    return save_png(draw_history(history, monitor, mode), out_path)


def draw_history(history: pd.DataFrame, monitor: str = "val_loss", mode: str = "auto") -> Figure:
    """plot_history's figure, unsaved: a test can read the curves and the best-epoch marker it draws."""
    mode = resolve_mode(monitor, mode)
    check_history(history, monitor)
    epochs = epoch_numbers(history)
    panels = _history_panels(history)
    best = best_row(history, monitor, mode)
    fig = _figure((5.0 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, columns) in zip(axes, panels):
        _draw_series(ax, epochs, history, columns, log_scale=title == "learning rate")
        ax.set_title(title)
        if best is not None:
            ax.axvline(epochs[best], color="0.4", linestyle="--", linewidth=1)
            if monitor in columns:
                ax.scatter([epochs[best]], [history[monitor].iloc[best]], color="crimson", zorder=3,
                           label=f"best: {history[monitor].iloc[best]:.4g}")
        ax.legend(fontsize=8)
    headline = (f"best epoch {int(epochs[best])} by {monitor} ({mode})" if best is not None
                else f"{monitor} has no numbers")
    fig.suptitle(f"training history: {headline}")
    return fig


def _history_panels(history: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Losses together, other metrics together, the learning rate alone (it spans decades)."""
    # planned_epochs: time_budget's plan (podium.training.time_budget), the same number on every row, no curve
    columns = [str(c) for c in history.columns if c not in ("epoch", "planned_epochs")]
    lr = [c for c in columns if c in LR_COLUMNS]
    losses = [c for c in columns if c.removeprefix("val_") == "loss"]
    metrics = [c for c in columns if c not in lr and c not in losses]
    panels = [("loss", losses), ("metrics", metrics), ("learning rate", lr)]
    return [(title, names) for title, names in panels if names]


def _draw_series(ax: Any, epochs: np.ndarray, history: pd.DataFrame, columns: list[str],
                 log_scale: bool) -> None:
    for column in columns:
        values = pd.to_numeric(history[column], errors="coerce")
        ax.plot(epochs, values, marker="o", markersize=3, label=column,
                linestyle="--" if not column.startswith("val_") and f"val_{column}" in columns else "-")
        if log_scale and (values > 0).all():
            ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------------------- confusion


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], out_path: str | os.PathLike,
                   normalize: bool = True) -> Path:
    """Heat map, rows = true class; normalized by row so rare classes are as readable as common ones."""
    return save_png(draw_confusion(cm, class_names, normalize), out_path)


def draw_confusion(cm: np.ndarray, class_names: Sequence[str], normalize: bool = True) -> Figure:
    """plot_confusion's figure, unsaved: a test can read the cells and numbers it draws."""
    matrix = np.asarray(cm, dtype=float)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise PodiumError("Confusion matrix and class names do not match.",
                          expected=f"a {n} x {n} matrix for {n} class names",
                          received=f"shape {matrix.shape}", fix="build it with podium.scoring.metrics.confusion")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    side = max(5.0, 0.32 * n + 3.0)
    fig = _figure((side + 1.0, side))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalize else max(matrix.max(), 1))
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), [str(name) for name in class_names], rotation=90, fontsize=tick_size(n))
    ax.set_yticks(range(n), [str(name) for name in class_names], fontsize=tick_size(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (" (share of each true class)" if normalize else " (counts)"))
    if n <= ANNOTATE_UP_TO:
        _annotate_cells(ax, matrix, normalize)
    return fig


def _annotate_cells(ax: Any, matrix: np.ndarray, normalize: bool) -> None:
    threshold = (1.0 if normalize else matrix.max()) / 2
    for (row, col), value in np.ndenumerate(matrix):
        if value == 0:
            continue
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(col, row, text, ha="center", va="center", fontsize=7,
                color="white" if value > threshold else "black")


# -------------------------------------------------------------------------------------------- tables


def per_class_table_markdown(table: pd.DataFrame) -> str:
    """A classification_table as Markdown, for a run's README or a Kaggle notebook cell."""
    columns = [str(c) for c in table.columns]
    lines = ["| class | " + " | ".join(columns) + " |",
             "|---|" + "|".join("---:" for _ in columns) + "|"]
    for name, row in table.iterrows():
        cells = [_cell(row[column], integer=str(column) == "support") for column in table.columns]
        lines.append(f"| {_escape(str(name))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any, integer: bool) -> str:
    if isinstance(value, (int, np.integer)) or (integer and isinstance(value, (float, np.floating))):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.3f}"
    return _escape(str(value))


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


# ------------------------------------------------------------------------------------------- summary


def summary_text(metrics: RunSummary) -> str:
    """At most 30 lines of at most 100 columns: what was trained, how well, per fold, and where it fails."""
    lines = _header_lines(metrics) + [""] + _fold_lines(metrics) + _worst_class_lines(metrics)
    if metrics.get("submission"):
        lines += ["", f"submission: {metrics['submission']}"]
    return "\n".join(_fit(line) for line in lines[:SUMMARY_LINES]) + "\n"


def _header_lines(metrics: RunSummary) -> list[str]:
    name = metrics.get("metric", "score")
    direction = metrics.get("direction", "max")
    views = list(metrics.get("tta_views") or [])
    cv = f"CV {name} ({'lower' if direction == 'min' else 'higher'} is better) {_score(metrics['cv_mean'])}" + (
        f" +/- {_score(metrics['cv_std'])}" if len(metrics["folds"]) > 1 else " (one fold: no spread)")
    tta = metrics.get("cv_tta_mean")
    if tta is None or not views:
        cv += "   with TTA: not run"
    else:
        gain = tta_gain(metrics)
        cv += f"   with TTA ({len(views)} views) {_score(tta)} ({tta - metrics['cv_mean']:+.4f}" \
              f"{', worse' if gain < 0 else ''})"
    lines = [
        f"run {metrics['run_id']}",
        f"competition {metrics['competition']}   backbone {metrics['backbone']} @ {metrics['image_size']}px"
        f"   folds {len(metrics['folds'])}   wall {_duration(metrics['wall_seconds'])}",
        cv,
    ]
    if metrics.get("cv_oof") is not None:
        lines.append(f"OOF {name} over every out-of-fold row (with TTA): {_score(metrics['cv_oof'])}")
    if metrics.get("extra"):
        lines.append("also (no TTA): " + "   ".join(f"{k} {_score(v)}" for k, v in metrics["extra"].items()))
    if metrics.get("pseudo_labels"):
        lines += summary_lines(metrics["pseudo_labels"], float(metrics.get("cv_tta_mean") or 0.0))
    return lines + [f"TTA views: {', '.join(map(str, views)) if views else 'none'}"]


def tta_gain(metrics: dict) -> float:
    """CV with TTA minus CV without, in the metric's direction (a lower log loss is a gain); 0 when not run."""
    if metrics.get("cv_tta_mean") is None:
        return 0.0
    gain = float(metrics["cv_tta_mean"]) - float(metrics["cv_mean"])
    return -gain if metrics.get("direction") == "min" else gain


def _fold_lines(metrics: RunSummary) -> list[str]:
    folds = list(metrics["folds"])
    lines = [f"{'fold':>4}  {'best epoch':>10}  {'epochs run':>10}  {'val':>8}  {'val TTA':>8}  monitor"]
    for fold in folds[:SHOWN_FOLDS]:
        lines.append(f"{fold['fold']:>4}  {fold['best_epoch']:>10}  {fold['epochs_run']:>10}  "
                     f"{_score(fold['val_score']):>8}  {_score(fold.get('val_score_tta')):>8}  "
                     f"{fold.get('monitor', '')}")
    if len(folds) > SHOWN_FOLDS:
        lines.append(f"... and {len(folds) - SHOWN_FOLDS} more folds (metrics.json)")
    return lines


def _worst_class_lines(metrics: RunSummary) -> list[str]:
    table = _per_class_frame(metrics.get("per_class"))
    if table is None:
        return []
    classes = table.drop(index=[name for name in AVERAGE_ROWS if name in table.index])
    if "support" in classes.columns:
        classes = classes[classes["support"] > 0]  # a class with no examples has no meaningful recall
    worst = classes.sort_values(["recall", "f1"], kind="stable").head(WORST_CLASSES)
    lines = ["", f"worst {len(worst)} classes by recall:"]
    for name, row in worst.iterrows():
        support = f"   support {int(row['support'])}" if "support" in row else ""
        lines.append(f"  {_shorten(str(name), 32):<32}  recall {row['recall']:.3f}   "
                     f"precision {row.get('precision', math.nan):.3f}   f1 {row.get('f1', math.nan):.3f}"
                     f"{support}")
    return lines


def _per_class_frame(per_class: Any) -> pd.DataFrame | None:
    if per_class is None:
        return None
    table = per_class if isinstance(per_class, pd.DataFrame) else pd.DataFrame.from_dict(
        dict(per_class), orient="index")
    if table.empty or "recall" not in table.columns:
        return None
    return table


def _score(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:.4f}"


def _duration(seconds: float) -> str:
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _shorten(text: str, width: int) -> str:
    """Keep both ends: run ids and paths differ at the end, names at the start."""
    if len(text) <= width:
        return text
    keep = width - 3
    return text[: keep - keep // 2] + "..." + text[-(keep // 2):]


def _fit(line: str) -> str:
    return _shorten(line, SUMMARY_WIDTH)


# ------------------------------------------------------------------------------------------- saving


def _figure(size: tuple[float, float]) -> Figure:
    return new_figure(size, DPI, layout="constrained")


# ------------------------------------------------------------------------------------- CV vs public


def plot_cv_vs_public(cv: Sequence[float], public: Sequence[float], labels: Sequence[str],
                      out_path: str | os.PathLike, title: str = "CV vs public score") -> Path:
    """One point per scored submission: points on a rising line mean the CV ranks submissions as Kaggle does."""
    return save_png(draw_cv_vs_public(cv, public, labels, title), out_path)


def draw_cv_vs_public(cv: Sequence[float], public: Sequence[float], labels: Sequence[str],
                      title: str = "CV vs public score") -> Figure:
    """plot_cv_vs_public's figure, unsaved: a test can read the points and the fitted line it draws."""
    fig = _figure((5.5, 4.2))
    ax = fig.subplots()
    ax.scatter(cv, public, color="steelblue", zorder=3)
    for x, y, label in zip(cv, public, labels):
        ax.annotate(_shorten(str(label), 28), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    if len(cv) >= 2 and np.ptp(np.asarray(cv, dtype=float)) > 0:
        slope, intercept = np.polyfit(np.asarray(cv, dtype=float), np.asarray(public, dtype=float), 1)
        xs = np.linspace(min(cv), max(cv), 2)
        ax.plot(xs, slope * xs + intercept, color="gray", linestyle="--", linewidth=1, label="least squares")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("CV (local)")
    ax.set_ylabel("public leaderboard score")
    ax.set_title(f"{title} ({len(cv)} submissions)")
    ax.grid(alpha=0.3)
    return fig


def summary_lines(record: dict, cv_tta_mean: float) -> list[str]:
    """The run summary's lines on its pseudo-labels (the record podium.runners.pseudo writes in metrics.json)."""
    counts = record["per_class"]
    none = sum(1 for n in counts.values() if not n)
    classes = ", ".join(f"{name} {n}" for name, n in counts.items() if n) + (f" (none: {none} classes)" if none else "")
    lines = [f"pseudo-labels: {record['total']} test images from run {record['run']}",
             f"  chosen by {record['rule']}, weight {record['weight']:g}", f"  per class: {classes}"]
    without = record.get("without") or {}
    if without.get("cv_tta_mean") is not None:
        lines.append(f"CV (TTA) without them ({without['run_id']}): {without['cv_tta_mean']:.4f}, with: "
                     f"{cv_tta_mean:.4f} ({cv_tta_mean - without['cv_tta_mean']:+.4f})")
    else:
        lines.append(f"CV without them: not trained (run {without.get('run_id')}: the same config without pseudo_run)")
    return lines
