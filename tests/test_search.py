"""The sweep on the real demo with the tiny CNN: the space is checked before training, a killed search
resumes without redoing finished work, a failing trial is recorded and the search goes on, a hopeless
trial is pruned before its last epoch."""

import keras
import optuna
import pandas as pd
import pytest
import yaml

from podium.tasks import get_task
from podium.cli.main import main
from podium.errors import PodiumError
from podium.search.study import load_space, open_study, run_search, trial_values

BASE = {"verbose": 0, "schedule": "constant", "early_stopping_patience": 5}


def space_file(tmp_path, demo_data, params, **extra):
    overrides = {"data_dir": str(demo_data), "runs_dir": str(tmp_path / "runs"), **BASE,
                 **extra.pop("overrides", {})}
    body = {"base": "configs/demo.yaml", "sampler": "grid", "params": params, "overrides": overrides,
            "pruner": {"type": "none"}, **extra}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def states(space):
    return [(t.state.name, t.params) for t in open_study(space, create=False).trials]


# ------------------------------------------------------------------------- the space, no training


def test_unknown_param_is_rejected_with_the_configs_own_message(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"base": "configs/demo.yaml", "params": {"lrr": [0.1, 0.2]}}))
    with pytest.raises(PodiumError, match="Unknown config key 'lrr'.*did you mean 'lr'"):
        load_space(path)


def test_bad_values_and_ungriddable_ranges_fail_before_any_training(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"base": "configs/demo.yaml", "params": {"backbone": ["tiny_cnn", "resnet9000"]}}))
    with pytest.raises(PodiumError, match="backbone"):
        load_space(path)
    path.write_text(yaml.safe_dump({"base": "configs/demo.yaml", "sampler": "grid",
                                    "params": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}))
    with pytest.raises(PodiumError, match="grid cannot walk it"):
        load_space(path)
    path.write_text(yaml.safe_dump({"base": "configs/demo.yaml", "params": {"lr": [0.1]}, "seeds": 2,
                                    "overrides": {"seed": 3}}))
    with pytest.raises(PodiumError, match="seed"):
        load_space(path)


def test_space_defaults_bundles_and_backbone_default_size(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"base": "configs/demo.yaml", "params": {
        "backbone": ["tiny_cnn"],
        "lr_schedule": [{"schedule": "constant"}, {"schedule": "cosine", "warmup_epochs": 1}]}}))
    space = load_space(path)
    assert space.seeds == [0, 1] and space.sampler == "tpe"
    assert space.overrides["val_split"] == 0.3 and space.overrides["folds"] == [0]
    assert space.study_dir.name == "search-space"
    values = trial_values(space, {"backbone": "tiny_cnn", "lr_schedule": "{schedule: cosine, warmup_epochs: 1}"})
    assert values == {"backbone": "tiny_cnn", "schedule": "cosine", "warmup_epochs": 1, "image_size": 0}
    assert space.params[1].labels == ("{schedule: constant}", "{schedule: cosine, warmup_epochs: 1}")


def test_a_changed_space_does_not_silently_join_the_old_study(tmp_path, demo_data):
    path = space_file(tmp_path, demo_data, {"lr": [0.001]})
    open_study(load_space(path))
    path.write_text(path.read_text().replace("0.001", "0.002"))
    with pytest.raises(PodiumError, match="search space changed"):
        open_study(load_space(path))


# ------------------------------------------------------------------------------- with training


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C in the middle of a given trial's given seed, after its first epoch."""

    def __init__(self, trial, cfg, when):
        super().__init__()
        self.hit = (trial.number, cfg.seed) == when

    def on_epoch_end(self, epoch, logs=None):
        if self.hit and epoch == 0:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_killed_search_resumes_without_redoing_finished_work(tmp_path, demo_data):
    space = load_space(space_file(tmp_path, demo_data, {"lr": [0.001, 0.004]}, seeds=2,
                                  overrides={"epochs": 2}))
    with pytest.raises(KeyboardInterrupt):
        run_search(space, get_task(space.base_config().task), callback_factories=[lambda trial, cfg: InterruptAt(trial, cfg, (1, 1))])
    first = open_study(space, create=False).trials
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL"]
    assert first[1].user_attrs["interrupted"] and len(first[1].user_attrs["seeds"]) == 1
    finished = {s["run_dir"]: (tmp_path / s["run_dir"] / "fold-0" / "metrics.json").stat().st_mtime_ns
                for t in first for s in t.user_attrs["seeds"]}
    assert len(finished) == 3  # trial 0's two seeds, trial 1's first seed

    outcome = run_search(space, get_task(space.base_config().task))  # the restart
    trials = open_study(space, create=False).trials
    assert [(t.state.name, t.params["lr"]) for t in trials] == [("COMPLETE", 0.001), ("FAIL", 0.004),
                                                                ("COMPLETE", 0.004)]
    assert outcome.ran == 1 and outcome.complete == 2
    for run_dir, mtime in finished.items():  # finished seeds were read back, not retrained
        assert (tmp_path / run_dir / "fold-0" / "metrics.json").stat().st_mtime_ns == mtime
    resumed = trials[2].user_attrs["seeds"][1]
    history = pd.read_csv(f"{resumed['run_dir']}/fold-0/history.csv")
    assert list(history["epoch"]) == [0, 1]  # the cut seed resumed after its saved epoch, not from scratch
    assert run_search(space, get_task(space.base_config().task)).ran == 0  # nothing owed any more


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, demo_data):
    # a weights file that is not there passes the config (a path) and fails the model build inside the trial
    missing = str(tmp_path / "missing.weights.h5")
    space = load_space(space_file(tmp_path, demo_data, {"weights": [missing, "none"]}, seeds=1,
                                  overrides={"epochs": 1}))
    outcome = run_search(space, get_task(space.base_config().task))
    trials = open_study(space, create=False).trials
    assert {t.params["weights"]: t.state.name for t in trials} == {missing: "FAIL", "none": "COMPLETE"}
    failed = next(t for t in trials if t.state.name == "FAIL")
    assert "PodiumError" in failed.user_attrs["error"] and "missing.weights.h5" in failed.user_attrs["error"]
    assert (outcome.failed, outcome.complete) == (1, 1)
    assert run_search(space, get_task(space.base_config().task)).ran == 0  # a trial that failed on its own is not retried forever


@pytest.mark.slow
def test_hopeless_trial_is_pruned_before_its_last_epoch(tmp_path, demo_data):
    space = load_space(space_file(tmp_path, demo_data, {"lr": [0.003, 1e-7]}, seeds=1,
                                  overrides={"epochs": 4, "early_stopping_patience": 10},
                                  pruner={"type": "percentile", "percentile": 25, "startup_trials": 1,
                                          "warmup_epochs": 1}))
    run_search(space, get_task(space.base_config().task))
    good, hopeless = open_study(space, create=False).trials
    assert good.state == optuna.trial.TrialState.COMPLETE and len(good.intermediate_values) == 4
    assert hopeless.state == optuna.trial.TrialState.PRUNED
    assert max(hopeless.intermediate_values) < 3  # stopped before epoch 4
    assert hopeless.intermediate_values[1] < good.intermediate_values[1]


@pytest.mark.slow
def test_random_sampler_with_a_trial_cap_continues_where_it_stopped(tmp_path, demo_data):
    space = load_space(space_file(tmp_path, demo_data, {"lr": {"type": "float", "low": 1e-4, "high": 1e-2,
                                                              "log": True}},
                                  sampler="random", trials=2, seeds=1, overrides={"epochs": 1}))
    assert run_search(space, get_task(space.base_config().task), max_trials=1).ran == 1
    assert run_search(space, get_task(space.base_config().task)).ran == 1
    trials = open_study(space, create=False).trials
    lrs = [t.params["lr"] for t in trials]
    assert len(trials) == 2 and lrs[0] != lrs[1] and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert run_search(space, get_task(space.base_config().task)).ran == 0


def test_augs_verb_writes_the_preview_grid_and_costs(tmp_path, demo_data, capsys):
    out = tmp_path / "augs.png"
    code = main(["augs", "--config", "configs/demo.yaml", f"data_dir={demo_data}", "--recipes", "flip", "crop",
                 "--images", "4", "--out", str(out)])
    assert code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "flip" in printed and "images/s" in printed


def test_nan_loss_fails_the_trial_with_a_reason():
    from podium.search.study import EpochReporter

    trial = optuna.create_study(direction="maximize").ask()
    reporter = EpochReporter(trial, prune=True, logged="val_accuracy")
    reporter.on_epoch_end(0, {"loss": 2.1, "val_accuracy": 0.3})
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {0: 0.3}
    with pytest.raises(PodiumError, match="loss became nan in epoch 2"):
        reporter.on_epoch_end(1, {"loss": float("nan"), "val_accuracy": 0.1})


def test_the_pruner_watches_the_runs_metric():
    from podium.config import load_config
    from podium.search.study import EpochReporter

    trial = optuna.create_study(direction="maximize").ask()
    cfg = load_config(None, ["task=segmentation", "augment=[flip]", "tta=[identity]", "monitor=val_loss"])
    reporter = EpochReporter(trial, prune=True, logged=cfg.metric_logged)  # dice, whatever the config monitors
    reporter.on_epoch_end(0, {"loss": 0.9, "val_loss": 0.8, "val_dice": 0.42, "val_iou": 0.3})
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {0: 0.42}
    trial = optuna.create_study(direction="minimize").ask()
    reporter = EpochReporter(trial, prune=True, logged=load_config(None, ["metric=log_loss"]).metric_logged)
    reporter.on_epoch_end(0, {"loss": 2.0, "val_loss": 1.9, "val_accuracy": 0.3, "val_log_loss": 1.9})
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {0: 1.9}


def test_the_study_optimises_the_metric_in_its_direction_and_keeps_it(tmp_path, demo_data):
    """metric=log_loss: optuna minimises, the study records the metric, and the same study name with another
    metric is refused (trials of different metrics are never ranked together)."""
    path = space_file(tmp_path, demo_data, {"lr": [0.001]}, overrides={"metric": "log_loss"})
    study = open_study(load_space(path))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert (study.user_attrs["metric"], study.user_attrs["direction"]) == ("log_loss", "min")
    assert open_study(load_space(path)).user_attrs["metric"] == "log_loss"  # reopened: the same study
    other = load_space(path, overrides=["metric=macro_f1"])
    with pytest.raises(PodiumError, match="was scored by log_loss"):
        open_study(other)
