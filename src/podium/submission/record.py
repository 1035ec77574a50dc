"""Which file a prediction goes to, and the record that traces it back to what made it.

`make predict ARGS="tta=[...]"` once overwrote the run's submission, and nothing said which views made
the file on disk. Now the run's own prediction settings (those of runs/<run-id>/config.yaml) write
`<run-id>.csv`, the name `make submit RUN=<run-id>` finds; any other settings read at predict time
(config.PREDICTION_KEYS: TTA views, folds, mask threshold, ...) write `<run-id>-p<hash>.csv`, a short
hash of those settings. Beside every file, `<name>.json` records the run, its config hash, the
settings, the folds and best epochs used, the data fingerprint and the CSV's sha256.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from podium.config import PREDICTION_KEYS, ExperimentConfig
from podium.data.competitions import load_competition
from podium.io import write_json


def prediction_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """Everything read at predict time that changes the submission but not the trained weights."""
    return {key: getattr(cfg, key) for key in PREDICTION_KEYS}


def run_prediction_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The prediction settings the run was trained with (its saved config.yaml; this config if none).
    Never with allow_unfinished: a prediction from unfinished folds never takes the run's own name."""
    saved = cfg.run_dir / "config.yaml"
    values = prediction_settings(cfg)
    if saved.is_file():
        try:
            recorded = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            recorded = {}
        defaults = prediction_settings(ExperimentConfig())
        values = {key: recorded.get(key, defaults[key]) for key in PREDICTION_KEYS}
    return {**values, "allow_unfinished": False}


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]


def submission_path(cfg: ExperimentConfig) -> Path:
    """submissions/<slug>/<run-id>.csv for the run's own settings, <run-id>-p<hash>.csv for any others."""
    folder = Path(cfg.submissions_dir) / load_competition(cfg.competition).slug
    settings = prediction_settings(cfg)
    if _same(settings, run_prediction_settings(cfg)):
        return folder / f"{cfg.run_id}.csv"
    return folder / f"{cfg.run_id}-p{settings_hash(settings)}.csv"


def record_path(submission: Path) -> Path:
    return Path(submission).with_suffix(".json")


def write_record(cfg: ExperimentConfig, submission: Path, used_folds: list[dict], data: dict) -> Path:
    """submissions/<slug>/<name>.json: the run, settings, folds and epochs, data and CSV digest."""
    submission = Path(submission)
    record = {
        "file": submission.name, "sha256": hashlib.sha256(submission.read_bytes()).hexdigest(),
        "run_id": cfg.run_id, "config_hash": cfg.config_hash(), "run_dir": str(cfg.run_dir),
        "settings": prediction_settings(cfg), "run_settings": run_prediction_settings(cfg),
        "folds_used": used_folds, "data": data, "written": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    return write_json(record_path(submission), record)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
