"""Which epoch is best: one rule for the checkpoint, EarlyStopping, the plots and the run summary.

Keras keeps monitor, mode and best in its MonitorCallback (keras/src/callbacks/monitor_callback.py); podium's
reading of a finished history (history.csv) lives here beside the callbacks, so the epoch the summary names is
the epoch best.keras holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.scoring.registry import monitor_direction


def best_epoch(history: pd.DataFrame, monitor: str = "val_loss", mode: str = "auto") -> int:
    """The epoch a checkpoint on `monitor` would keep (the first one on ties), 1-based as Keras prints it."""
    row = best_row(history, monitor, resolve_mode(monitor, mode))
    if row is None:
        raise PodiumError(f"History column {monitor!r} has no numbers.", expected="at least one epoch logged",
                          received="only NaN", fix="check that training ran at least one epoch")
    return int(epoch_numbers(history)[row])


def resolve_mode(monitor: str, mode: str) -> str:
    """mode with auto resolved by the one rule config uses too (podium.scoring.registry.monitor_direction)."""
    if mode == "auto":
        return monitor_direction(monitor)
    if mode not in ("min", "max"):
        raise PodiumError(f"Unknown monitor mode {mode!r}.", expected="'min', 'max' or 'auto'",
                          received=repr(mode), fix="use 'min' for losses, 'max' for accuracy")
    return mode


def check_history(history: pd.DataFrame, monitor: str) -> None:
    if history.empty:
        raise PodiumError("The training history is empty.", expected="one row per epoch",
                          received="no rows", fix="check that training ran at least one epoch")
    if monitor not in history.columns:
        raise PodiumError(f"The training history has no column {monitor!r} to pick the best epoch by.",
                          expected=f"a column named {monitor!r}",
                          received=f"columns {list(map(str, history.columns))}",
                          fix="pass monitor= one of the columns found")


def epoch_numbers(history: pd.DataFrame) -> np.ndarray:
    """1-based, as Keras prints "Epoch 18/30": the plot, the summary and the log name the same epoch."""
    if "epoch" in history.columns:
        return history["epoch"].to_numpy() + 1
    return np.arange(1, len(history) + 1)


def best_row(history: pd.DataFrame, monitor: str, mode: str) -> int | None:
    values = pd.to_numeric(history[monitor], errors="coerce").to_numpy(dtype=float)
    if np.all(np.isnan(values)):
        return None
    return int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))


