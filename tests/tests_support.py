"""Helpers shared by tests: real JPEG bytes from the embedded demo, a simulated kill, the submit log."""

import csv
import zipfile
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"


def real_demo_jpegs(count: int) -> list[bytes]:
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:count]
        return [zf.read(n) for n in names]


def stop_after_epoch(epoch: int):
    """A Keras callback that interrupts fit() like a kill would, after `epoch` (0-based) ends."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def on_epoch_end(self, seen, logs=None):
            if seen == epoch:
                raise KeyboardInterrupt("simulated kill")

    return StopAfter()


def log_rows(target) -> list[dict]:
    """The rows of a submit target's submissions/log.csv."""
    with (target.submissions_dir / "log.csv").open() as handle:
        return list(csv.DictReader(handle))
