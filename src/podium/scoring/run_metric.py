"""Which metric scores a run: the one place that answers it for blends, pseudo-labels and calibration.

A config's own `metric:` (when config.py has one: its `resolved_metric`) overrides the competition spec's;
a finished run's record (metrics.json `metric_spec` or `metric`, when it names a registry metric) says
what actually scored it, which is what a blend compares across runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from podium.data.competitions import load_competition
from podium.errors import PodiumError
from podium.scoring.registry import Metric, resolve_metric


def run_metric(cfg: Any, spec: Any = None) -> Metric:
    """The metric of a config: its `resolved_metric` where config.py gives one, else the spec's."""
    resolved = getattr(cfg, "resolved_metric", None)
    if isinstance(resolved, Metric):
        return resolved
    return (spec if spec is not None else load_competition(cfg.competition)).resolved_metric


def recorded_metric(run_dir: str | Path, cfg: Any) -> tuple[Metric, str]:
    """(metric, where it was read) of a finished run: its metrics.json when that names a registry metric
    (older runs wrote a task's word such as "micro F1" there), else its config's / spec's."""
    path = Path(run_dir) / "metrics.json"
    values = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for key in ("metric_spec", "metric"):
        value = values.get(key)
        if value:
            try:
                return resolve_metric(value), f"{path} ({key})"
            except PodiumError:
                continue
    return run_metric(cfg), f"the spec of competition {cfg.competition}"
