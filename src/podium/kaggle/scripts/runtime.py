"""What both kernel scripts ask once podium is unpacked: where Kaggle (or `make rehearse`) put things.

Standard library only: the inference script imports this before check_environment has said whether the
Kaggle image has what podium needs.
"""

from __future__ import annotations

import os
from pathlib import Path


def kaggle_roots() -> tuple[Path, Path]:
    """(input, working): Kaggle's folders, unless the environment points them at a local tree (make rehearse)."""
    return (Path(os.environ.get("PODIUM_KAGGLE_INPUT", "/kaggle/input")),
            Path(os.environ.get("PODIUM_KAGGLE_WORKING", "/kaggle/working")))


def competition_input(input_root: Path, slug: str) -> Path:
    """The attached competition's folder: /kaggle/input/<slug>, or .../competitions/<slug> on newer images."""
    for folder in (input_root / slug, input_root / "competitions" / slug):
        if folder.is_dir():
            return folder
    raise SystemExit("competition data is not attached: add it to the kernel's competition sources "
                     "(looked for " + str(input_root / slug) + ")")
