"""Pictures of images: pairs side by side (leaks, duplicates) and a grid of samples per class.

A number says a leak exists; a picture makes a user believe it and see what kind of copy it is. Drawn on a
private Agg figure (no pyplot, no display) and written atomically through podium.figures, like every plot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from podium.figures import new_figure, save_png

DPI = 100
PAIRS_PER_ROW = 3
TILE_INCHES = 1.6


def pair_gallery(pairs: Sequence[tuple[np.ndarray, np.ndarray, str, str, str]], out_path: str | os.PathLike,
                 title: str) -> Path:
    """One cell per pair: (left image, right image, left caption, right caption, pair caption)."""
    rows = max(1, -(-len(pairs) // PAIRS_PER_ROW))
    fig = figure((2 * PAIRS_PER_ROW * TILE_INCHES, rows * (TILE_INCHES + 0.5) + 0.6))
    axes = fig.subplots(rows, 2 * PAIRS_PER_ROW, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (left, right, left_caption, right_caption, caption) in enumerate(pairs):
        row, col = divmod(k, PAIRS_PER_ROW)
        for ax, image, text in ((axes[row, 2 * col], left, left_caption), (axes[row, 2 * col + 1], right, right_caption)):
            ax.imshow(image)
            ax.set_title(text, fontsize=7)
        axes[row, 2 * col].text(1.05, -0.12, caption, transform=axes[row, 2 * col].transAxes, ha="center",
                                va="top", fontsize=7, color="crimson")
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out_path)


def class_grid(samples: dict[str, Sequence[np.ndarray]], out_path: str | os.PathLike, title: str) -> Path:
    """One row per class (name and count on the left), the same number of columns for each."""
    columns = max([len(images) for images in samples.values()] + [1])
    fig = figure((columns * 1.1 + 1.6, len(samples) * 1.1 + 0.6))
    axes = fig.subplots(max(1, len(samples)), columns, squeeze=False)
    for row, (name, images) in enumerate(samples.items()):
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(images):
                ax.imshow(images[col])
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_png(fig, out_path)


def figure(size: tuple[float, float]) -> Figure:
    """A figure at the gallery's resolution, for other data pictures (eda) to match it."""
    return new_figure(size, DPI, layout="constrained")
