"""podium.training.time_budget: the planner on given times, the planned schedule, and a real budgeted demo fold.

No assertion depends on how fast this machine is: the real training checks that the plan was made, recorded,
followed and kept on resume, and that the schedule ends at min_lr when the planned epochs all ran."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.reports.run_report import draw_history
from podium.runners.train import train_and_evaluate
from podium.tasks import get_task
from podium.training import time_budget
from podium.training.schedules import learning_rate
from tests_support import stop_after_epoch


def test_the_planner_fits_the_epochs_into_the_share():
    # epoch: 50 steps x 0.1 s + 1 s validation = 6 s; usable: (100 - 10 reserve - 4 recompile) x 0.9 = 77.4 s
    plan = time_budget.plan_epochs(100.0, 0.1, 50, 1.0, max_epochs=30, reserve_seconds=10.0,
                                   recompile_seconds=4.0, safety=0.1)
    assert plan.epochs == 12 and plan.epoch_seconds == pytest.approx(6.0) and not plan.warning
    capped = time_budget.plan_epochs(100.0, 0.1, 50, 1.0, max_epochs=5, reserve_seconds=10.0, recompile_seconds=4.0)
    assert capped.epochs == 5  # epochs is the upper bound
    assert time_budget.plan_epochs(1000.0, 0.1, 50, 0.0, max_epochs=1000, safety=0.0).epochs == 200


def test_a_budget_under_one_epoch_plans_one_epoch_and_says_so():
    plan = time_budget.plan_epochs(5.0, 1.0, 100, 10.0, max_epochs=20, reserve_seconds=2.0)
    assert plan.epochs == 1
    assert "under one epoch" in plan.warning and "110.0 s" in plan.warning
    spent = time_budget.plan_epochs(-30.0, 1.0, 10, 0.0, max_epochs=20)  # the share was gone before the plan
    assert spent.epochs == 1 and spent.warning


def test_the_planner_refuses_measurements_of_nothing():
    with pytest.raises(PodiumError, match="Cannot plan"):
        time_budget.plan_epochs(100.0, 0.0, 10, 1.0, max_epochs=5)
    with pytest.raises(PodiumError, match="Cannot plan"):
        time_budget.plan_epochs(100.0, 0.1, 0, 1.0, max_epochs=5)


def test_the_planned_schedule_ends_at_min_lr_and_keeps_its_warmup_share(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=14", "schedule=onecycle", "warmup_epochs=3", "lr=0.2", "min_lr=0.0001")
    planned = time_budget.planned_config(cfg, 7)
    assert planned.epochs == 7 and planned.warmup_epochs == pytest.approx(1.5)
    steps = 20
    rate = learning_rate(planned, steps)
    at = lambda step: float(keras.ops.convert_to_numpy(rate(step)))  # noqa: E731
    assert at(planned.epochs * steps) == pytest.approx(0.0001, rel=1e-3)  # the end: min_lr
    assert at(round(1.5 * steps)) == pytest.approx(0.2, rel=1e-3)  # the peak, after the scaled warmup
    assert time_budget.planned_config(cfg, 14) is cfg and time_budget.planned_config(cfg, 30) is cfg


def test_planning_scales_boundaries_and_the_unfreeze_epoch(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=10", "schedule=piecewise", "lr_boundaries=[4,8]", "lr_values=[0.1,0.01,0.001]",
                   "freeze_backbone=true", "unfreeze_epoch=4")
    planned = time_budget.planned_config(cfg, 5)
    assert planned.lr_boundaries == [2.0, 4.0] and planned.unfreeze_epoch == 2
    one = time_budget.planned_config(cfg, 1)
    assert one.epochs == 1 and one.unfreeze_epoch == 0  # one epoch: head-only, no second phase


@pytest.mark.parametrize("text", ["{\"epochs\": 3", "[1, 2]", "{\"epochs\": 3}"])
def test_a_damaged_plan_is_refused_naming_the_fix(tmp_path, text):
    (tmp_path / time_budget.BUDGET_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(PodiumError, match="damaged") as caught:
        time_budget.read_plan(tmp_path)
    assert "FORCE=1" in caught.value.fix


def test_a_kernel_session_becomes_the_budget_less_its_margin():
    assert time_budget.kernel_budget_seconds(0, "NvidiaTeslaT4") == pytest.approx(12 * 3600 * 0.95)
    assert time_budget.kernel_budget_seconds(0, "TPU") == pytest.approx(9 * 3600 * 0.95)
    assert time_budget.kernel_budget_seconds(3600, "none") == pytest.approx(3000.0)  # the 10-minute floor
    assert time_budget.kernel_budget_seconds(300, "none") == pytest.approx(60.0)


def _check_followed(result, cfg, min_lr):
    """The fold trained the epochs it planned (or the guard said where it stopped), logging the plan."""
    plan = json.loads((result.fold_dir / "budget.json").read_text())
    assert result.budget == plan
    assert 1 <= plan["epochs"] <= cfg.epochs and plan["max_epochs"] == cfg.epochs
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert (history["planned_epochs"] == plan["epochs"]).all()
    stopped = plan.get("stopped_at_epoch")
    assert len(history) == (stopped or plan["epochs"])
    if not stopped:  # every planned epoch ran: the one-cycle schedule ended where it should
        assert history["learning_rate"].iloc[-1] == pytest.approx(min_lr, rel=1e-3)
        if plan["epochs"] > 1:  # the rate rose before it fell (one epoch logs only its end)
            assert history["learning_rate"].max() > 10 * min_lr
    return plan


def test_a_budgeted_demo_fold_plans_trains_and_records_its_plan(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path, "epochs=300", "time_budget=0.75", "schedule=onecycle", "warmup_epochs=30",
                   "min_lr=0.00001", "early_stopping_patience=1000")
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    plan = _check_followed(result, cfg, 0.00001)
    assert plan["epochs"] < 300  # 45 s cannot hold 300 epochs of the demo on any machine this runs on
    assert plan["reserve_seconds"] > 0 and plan["epoch_seconds"] > 0
    assert json.loads((result.fold_dir / "metrics.json").read_text())["budget"]["epochs"] == plan["epochs"]
    assert time_budget.describe(0, result.budget)[0].startswith(f"budget: fold 0: planned {plan['epochs']} of at most 300")
    figure = draw_history(pd.read_csv(result.fold_dir / "history.csv"), "val_accuracy")  # the plan is no curve
    labels = {line.get_label() for ax in figure.axes for line in ax.get_lines()}
    assert "learning_rate" in labels and "planned_epochs" not in labels


def test_a_resumed_budgeted_fold_keeps_its_plan(tiny, tmp_path):
    # an hour: the guard never stops these few seconds of training, so every assertion below holds on any load
    cfg = tiny.cfg(tmp_path, "epochs=300", "time_budget=60", "schedule=onecycle", "min_lr=0.00001",
                   "early_stopping_patience=1000")
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    # a plan an interrupted run made: resumed, the fold follows it and measures nothing again
    made = time_budget.plan_epochs(60.0, 0.001, 25, 0.01, max_epochs=300)
    made = time_budget.Plan(**{**made.to_dict(), "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[_SavePlanFirst(fold_dir, made),
                                                                        stop_after_epoch(0)])
    assert json.loads((fold_dir / "budget.json").read_text())["epochs"] == 3
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.budget["epochs"] == 3
    history = pd.read_csv(result.fold_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2] and (history["planned_epochs"].iloc[1:] == 3).all()
    assert "stopped_at_epoch" not in result.budget and result.epochs_run == 3
    # the schedule built for the 3 planned epochs, continued from the restored step: it ends at min_lr
    assert history["learning_rate"].iloc[-1] == pytest.approx(0.00001, rel=1e-3)
    assert history["learning_rate"].iloc[1] > 100 * 0.00001


class _SavePlanFirst(keras.callbacks.Callback):
    """Replaces the fresh plan with a given one at the first epoch's end (before the kill): what the resume reads."""

    def __init__(self, fold_dir, plan):
        super().__init__()
        self.fold_dir, self.plan = fold_dir, plan

    def on_epoch_end(self, epoch, logs=None):
        time_budget.save_plan(self.fold_dir, self.plan)


def test_without_a_budget_nothing_is_planned(tiny, tmp_path):
    cfg = tiny.cfg(tmp_path)
    assert time_budget.budget_seconds(cfg) is None
    assert time_budget.fold_deadline(cfg, cfg.run_dir, 0, 1) is None
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.budget == {} and not (result.fold_dir / "budget.json").exists()
    assert "planned_epochs" not in pd.read_csv(result.fold_dir / "history.csv")


def test_a_session_budget_applies_without_a_config_budget_and_folds_share_it(tiny, tmp_path):
    """The folds left share what is left: with 600 s and two folds to train, this fold gets (about) 300 s."""
    import time

    cfg = tiny.cfg(tmp_path)
    with time_budget.session_budget(600.0):
        share = time_budget.fold_deadline(cfg, cfg.run_dir, 0, 2) - time.monotonic()
        alone = time_budget.fold_deadline(cfg, cfg.run_dir, 0, 1) - time.monotonic()
    assert time_budget.fold_deadline(cfg, cfg.run_dir, 0, 2) is None
    assert 200 < share <= 300 and 400 < alone <= 600 and np.isfinite(share)
    own = tiny.cfg(tmp_path, "time_budget=1")  # the config's own budget and a session: the earlier deadline wins
    with time_budget.session_budget(600.0):
        assert time_budget.fold_deadline(own, own.run_dir, 0, 1) - time.monotonic() <= 60


def test_make_train_prints_the_plan(tiny, tmp_path, capsys):
    """Through the CLI (make train -> workflow.train_run, which starts the clock before loading the data): an
    hour holds the demo's 2 epochs on any machine, so the plan is the upper bound, said after the summary."""
    from podium.cli.main import main

    assert main(["train", *tiny.args(tmp_path, "time_budget=60", "epochs=2", "schedule=cosine")]) == 0
    out = capsys.readouterr().out
    assert "budget: fold 0: planned 2 of at most 2 epochs (" in out and "reserved for prediction" in out
