"""The one way podium draws and saves a plot.

A private Figure on its own Agg canvas (no pyplot): no display needed, no global figure registry to leak,
and a notebook that imported podium keeps its backend. Every PNG is written through io.atomic_path, so a
killed run never leaves half a picture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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
