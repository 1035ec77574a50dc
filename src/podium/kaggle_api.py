"""Thin layer over the official kaggle client. The client logs in at import, so import it lazily."""

from __future__ import annotations

from pathlib import Path

from podium.competitions import CompetitionSpec
from podium.errors import PodiumError


def download_competition(spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
    """Download the competition's files through the Kaggle API into raw_dir (not implemented yet)."""
    raise PodiumError(f"Downloading '{spec.slug}' through the Kaggle API is not available yet.",
                      expected="the competition's files in a local folder",
                      received="no SRC= folder", fix=f"download them from https://www.kaggle.com/competitions/"
                      f"{spec.slug}/data and run: make data COMP={spec.slug} SRC=<that folder>")
