"""The one way podium draws and saves a plot.

A private Figure on its own Agg canvas (no pyplot): no display needed, no global figure registry to leak,
and a notebook that imported podium keeps its backend. Every PNG is written through io.atomic_path, so a
killed run never leaves half a picture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from podium.errors import PodiumError
from podium.io import atomic_path


def new_figure(size: tuple[float, float], dpi: float, layout: str | None = None) -> Figure:
    """A figure of `size` inches that draws on its own Agg canvas."""
    figure = Figure(figsize=size, dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, out_path: str | os.PathLike, **savefig: Any) -> Path:
    """Write `figure` to `out_path` as PNG, atomically; `savefig` are matplotlib's options (dpi, bbox_inches)."""
    with atomic_path(out_path) as tmp:
        figure.savefig(tmp, format="png", **savefig)
    return Path(out_path)


def tick_size(n: int) -> int:
    """Tick labels small enough for n class names side by side."""
    return 9 if n <= 20 else 7


def plot_class_distribution(counts: Mapping[str, int], out_path: str | os.PathLike,
                            title: str = "images per class") -> Path:
    """Horizontal bars, largest first, counts written on the bars: imbalance shows before training."""
    return save_png(draw_class_distribution(counts, title), out_path)


def draw_class_distribution(counts: Mapping[str, int], title: str = "images per class") -> Figure:
    """plot_class_distribution's figure, unsaved: a test can read the bars it draws."""
    if not counts:
        raise PodiumError("No classes to plot.", expected="a count per class", received="an empty mapping",
                          fix="check that the index has labeled train rows")
    ordered = sorted(((str(name), int(count)) for name, count in counts.items()),
                     key=lambda item: (-item[1], item[0]))
    names = [name for name, _ in ordered]
    values = [count for _, count in ordered]
    fig = new_figure((8.0, max(3.0, 0.28 * len(names) + 1.5)), 110, layout="constrained")
    ax = fig.subplots()
    bars = ax.barh(range(len(names)), values, color="steelblue")
    ax.set_yticks(range(len(names)), names, fontsize=tick_size(len(names)))
    ax.set_ylim(len(names) - 0.5, -0.5)  # largest on top, no empty band above or below
    ax.bar_label(bars, labels=[str(v) for v in values], padding=3, fontsize=tick_size(len(names)))
    ax.set_xlim(0, max(values) * 1.12 + 1)
    ax.set_xlabel("images")
    ax.set_title(f"{title} ({len(names)} classes, {sum(values)} images)")
    return fig
