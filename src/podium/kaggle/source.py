"""`make data`'s source for a spec with `source: kaggle` (podium.data.sources.Source): the competition's files
downloaded by podium.kaggle.client. The entry point hands it down, so data/ never imports the Kaggle client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from podium.data.competitions import CompetitionSpec
from podium.kaggle.client import download_competition


@dataclass(frozen=True)
class KaggleSource:
    name: str = "kaggle"
    remote: bool = True  # a folder copied before (`make data SRC=`) stands in: later stages ask Kaggle nothing

    def fetch(self, spec: CompetitionSpec, raw_dir: Path, force: bool = False) -> None:
        download_competition(spec, raw_dir, force=force)


KAGGLE_SOURCE = KaggleSource()
