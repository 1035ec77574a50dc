"""Helpers shared by tests: real JPEG bytes from the embedded demo."""

import zipfile
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"


def real_demo_jpegs(count: int) -> list[bytes]:
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:count]
        return [zf.read(n) for n in names]
