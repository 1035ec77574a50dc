"""LR range test on the demo with the tiny CNN: an exponential sweep that stops when the loss blows up
and suggests a start value in the range that actually trains."""

import numpy as np
import pandas as pd
import pytest

from podium.tasks import get_task
from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from podium.runners.lr_find import lr_range_test, lr_schedule


def test_schedule_is_exponential_between_the_bounds():
    lrs = np.array([lr_schedule(i, 101, 1e-6, 1.0) for i in range(101)])
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    assert lrs[50] == pytest.approx(1e-3)  # half the steps, half the decades
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], lrs[1] / lrs[0])


def test_range_test_finds_a_trainable_start_and_stops_on_divergence(demo_data, tmp_path):
    cfg = load_config("configs/demo.yaml", [f"data_dir={demo_data}", f"runs_dir={tmp_path / 'runs'}", "verbose=0"])
    result = lr_range_test(cfg, get_task(cfg.task), steps=150, min_lr=1e-6, max_lr=100.0, out_dir=tmp_path / "lrf")
    assert result.diverged and len(result.lrs) < 150  # a sweep up to lr=100 must blow up before its end
    assert 1e-5 < result.suggested_lr < 5e-2  # tiny CNN + Adam trains around 1e-3
    assert result.suggested_lr == pytest.approx(result.min_loss_lr / 10)
    lowest = int(np.argmin(result.smoothed))
    assert result.smoothed[lowest] < result.smoothed[0] - 0.1  # the loss really fell before it rose
    table = pd.read_csv(result.csv)
    assert len(table) == len(result.lrs) and list(table.columns) == ["step", "lr", "loss", "smoothed"]
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
    assert not cfg.run_dir.exists()  # the throwaway model leaves the run folder alone


def test_bad_bounds_are_refused_before_training(tmp_path):
    cfg = load_config(None, [f"runs_dir={tmp_path}"])
    with pytest.raises(PodiumError, match="min_lr"):
        lr_range_test(cfg, get_task(cfg.task), min_lr=1.0, max_lr=0.1)


def test_lr_find_verb_prints_the_suggestion(demo_data, tmp_path, capsys):
    code = main(["lr-find", "--config", "configs/demo.yaml", f"data_dir={demo_data}",
                 f"runs_dir={tmp_path / 'runs'}", "--steps", "60", "--min-lr", "1e-5", "--max-lr", "10"])
    assert code == 0
    out = capsys.readouterr().out
    assert "suggested start lr=" in out and "lr_find.png" in out
    assert list((tmp_path / "runs" / "lr-find").glob("*/lr_find.png"))


def test_range_test_sweeps_a_segmentation_model_with_its_own_loss(tmp_path):
    from tests_support import make_data

    make_data("shapes-segmentation", str(tmp_path / "data"))
    cfg = load_config("configs/shapes-segmentation.yaml", [f"data_dir={tmp_path / 'data'}",
                                                          f"runs_dir={tmp_path / 'runs'}", "image_size=32",
                                                          "unet_filters=8", "verbose=0"])
    result = lr_range_test(cfg, get_task(cfg.task), steps=60, min_lr=1e-5, max_lr=1.0, out_dir=tmp_path / "lrf")
    assert len(result.lrs) > 10 and 1e-6 < result.suggested_lr < 1.0
    assert min(result.smoothed) < result.smoothed[0] - 0.1  # BCE + Dice fell as the LR rose
