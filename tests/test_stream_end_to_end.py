"""The demo trained through the uint8 cache, then predicted with the same weights through the streaming path
(cache: none), writes the very same submission file, byte for byte; and a run trained and predicted with
nothing cached at all finishes and says how its images were held."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from podium.data.stream import StreamedRows
from podium.data.dataset import load_labeled_data
from podium.submission.record import submission_path
from podium.tasks import get_task
from podium.workflow import predict_run, train_run


def test_streamed_prediction_with_the_cached_runs_weights_is_the_same_submission(tiny, tiny_run, tmp_path):
    """tiny_run trained (and predicted) through the cache that `cache: auto` chose; copies of it predict again."""
    cached_cfg = dataclasses.replace(tiny.copy(tiny_run, tmp_path / "cached"), cache="disk")
    cached = predict_run(cached_cfg, get_task(cached_cfg.task), progress=False)
    assert any("cache=disk (memmap cache)" in note for note in cached.notes), cached.notes
    streamed_cfg = dataclasses.replace(tiny.copy(tiny_run, tmp_path / "streamed"), cache="none")
    streamed = predict_run(streamed_cfg, get_task(streamed_cfg.task), progress=False)
    assert any("cache=none (streaming): set by the config" in note for note in streamed.notes), streamed.notes
    assert streamed.submission != cached.submission and streamed.submission.name == cached.submission.name
    assert streamed.submission.read_bytes() == cached.submission.read_bytes() == \
        submission_path(tiny_run).read_bytes()
    assert np.array_equal(np.load(streamed_cfg.run_dir / "test_predictions.npy"),
                          np.load(tiny_run.run_dir / "test_predictions.npy"))


def test_a_run_trained_and_predicted_through_the_streaming_path_finishes(tiny, demo_data, tmp_path):
    data_dir = Path(shutil.copytree(demo_data, tmp_path / "data", ignore=shutil.ignore_patterns("cache")))
    cfg = tiny.cfg(tmp_path, "name=streamed", "cache=none", data=data_dir)
    data = load_labeled_data(cfg, get_task(cfg.task), progress=False)
    assert isinstance(data.images, StreamedRows) and data.cache.mode == "none"
    summary = train_run(cfg, get_task(cfg.task), progress=False)
    assert any("cache=none (streaming)" in note for note in summary.notes), summary.notes
    assert 0 <= summary.cv_mean <= 1 and (cfg.run_dir / "fold-0" / "best.keras").is_file()
    predicted = predict_run(cfg, get_task(cfg.task), progress=False)
    assert predicted.submission.is_file() and predicted.n_rows > 0
    assert not list((data_dir / "demo").rglob("*.u8"))  # nothing decoded was written
