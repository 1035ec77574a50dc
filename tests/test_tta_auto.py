"""tta_auto: `make predict` (and the inference package) use the TTA views only where the run measured that
they help, in the metric's direction; otherwise the identity view alone, said in the summary."""

import json
from pathlib import Path

import pandas as pd
import pytest

from podium.tasks import get_task
from podium.config import load_config
from podium.errors import PodiumError
from podium.workflow import measured_tta, predict_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def untrained_run(demo_data, tmp_path_factory):
    """A real (untrained) tiny_cnn checkpoint laid out as a finished fold 0 of the demo config."""
    from podium import tasks

    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data), "runs_dir": str(runs),
                                                        "folds": [0], "verbose": 0, "tta_auto": True})
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 10).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text(json.dumps({"best_epoch": 1, "epochs_run": 1}))
    return cfg


def _measured(cfg, cv, cv_tta, direction="max", views=("identity", "hflip")):
    (cfg.run_dir / "metrics.json").write_text(json.dumps({
        "metric": "log_loss" if direction == "min" else "accuracy", "direction": direction, "cv_mean": cv,
        "cv_std": 0.0, "cv_tta_mean": cv_tta, "folds": [{"fold": 0}], "tta_views": list(views)}))


@pytest.mark.parametrize("cv, cv_tta, direction, kept", [
    (0.80, 0.82, "max", True), (0.80, 0.78, "max", False),  # accuracy: higher is better
    (0.50, 0.45, "min", True), (0.50, 0.55, "min", False),  # log loss: lower is better
    (0.80, 0.80, "max", True)])  # no change: the views the config names stay
def test_the_views_stay_only_where_the_run_measured_that_they_help(untrained_run, cv, cv_tta, direction, kept):
    _measured(untrained_run, cv, cv_tta, direction)
    resolved, notes = measured_tta(untrained_run)
    assert resolved.tta == (["identity", "hflip"] if kept else ["identity"])
    assert ("kept" in notes[0]) == kept and ("identity alone" in notes[0]) != kept
    assert resolved.run_id == untrained_run.run_id  # a predict-time key: the same run


def test_without_tta_auto_the_config_is_used_as_it_is(untrained_run):
    _measured(untrained_run, 0.8, 0.7)
    plain = load_config(ROOT / "configs" / "demo.yaml", {**{k: getattr(untrained_run, k) for k in
                                                           ("data_dir", "runs_dir", "folds", "verbose")}})
    assert measured_tta(plain) == (plain, [])


def test_tta_auto_needs_the_runs_own_measurement_of_those_views(untrained_run):
    _measured(untrained_run, 0.8, 0.7, views=("identity", "vflip"))
    with pytest.raises(PodiumError, match="own measurement"):
        measured_tta(untrained_run)


def test_predict_writes_the_submission_with_the_measured_views_and_says_why(untrained_run):
    _measured(untrained_run, 0.30, 0.25)
    summary = predict_run(untrained_run, get_task(untrained_run.task), progress=False)
    assert any("identity alone" in note for note in summary.notes)
    record = json.loads(summary.record.read_text(encoding="utf-8"))
    assert "identity" in json.dumps(record) and len(pd.read_csv(summary.submission)) == summary.n_rows


def test_the_inference_package_carries_the_resolved_views(untrained_run, tmp_path):
    from podium.kaggle.inference import package_run

    _measured(untrained_run, 0.30, 0.25)
    import yaml

    package_run(untrained_run, get_task(untrained_run.task), tmp_path / "package", "tester/demo-run")
    packaged = yaml.safe_load((tmp_path / "package" / untrained_run.run_id / "config.yaml").read_text(encoding="utf-8"))
    assert packaged["tta"] == ["identity"] and packaged["tta_auto"] is False


def test_the_inference_kernel_applies_the_resolved_views_too(untrained_run):
    """The kernel's settings go over its package's config: they must not bring back views that hurt."""
    from podium.kaggle.kernels import inference_script, run_record

    _measured(untrained_run, 0.30, 0.25)
    script = inference_script(untrained_run, "0" * 32)
    settings = json.loads(script.split('SETTINGS = json.loads(r"""', 1)[1].split('""")', 1)[0])
    assert settings["inference"]["tta"] == ["identity"]
    assert run_record(untrained_run, "inference")["settings"]["tta"] == ["identity"]
    _measured(untrained_run, 0.25, 0.30)  # the views helped: kept
    assert run_record(untrained_run, "inference")["settings"]["tta"] == ["identity", "hflip"]
