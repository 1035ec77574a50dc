"""LR range test (Smith 2015; fastai's lr_find): raise the learning rate exponentially over a few
hundred training steps on a fresh model, watch the loss, and start training well below where it blows up.

Steps run through `model.train_on_batch`, not `fit`, because Keras 3 reports a running epoch mean as the
batch loss inside fit, and this test needs each step's own loss. Nothing is written to the config's run
folder: the model is thrown away.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from podium.tasks.base import Task
from podium.config import ExperimentConfig
from podium.data.dataset import load_labeled_data
from podium.errors import PodiumError
from podium.figures import new_figure, save_png
from podium.io import write_csv
from podium.training.schedules import make_optimizer
from podium.runners.train import make_loaders

SMOOTHING = 0.9  # exponential moving average of the loss, bias-corrected (the raw loss is too noisy)
DIVERGE_FACTOR = 4.0  # stop once the smoothed loss is this many times its best
MIN_STEPS_BEFORE_STOP = 10
SUGGEST_BELOW_MINIMUM = 10.0  # suggested start = LR at the smoothed minimum / 10, the usual rule


@dataclass
class LrFindResult:
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    min_loss_lr: float  # where the smoothed loss is lowest
    steepest_lr: float  # where it falls fastest (per decade of LR), before the minimum
    suggested_lr: float  # what to put in lr=
    diverged: bool  # stopped because the loss blew up (the usual, wanted end)
    csv: Path
    plot: Path


def lr_schedule(step: int, steps: int, min_lr: float, max_lr: float) -> float:
    """Exponential: equal time per decade, from min_lr at step 0 to max_lr at the last step."""
    return min_lr * (max_lr / min_lr) ** (step / max(1, steps - 1))


def lr_range_test(cfg: ExperimentConfig, task: Task, *, steps: int = 200, min_lr: float = 1e-7, max_lr: float = 10.0,
                  data=None, out_dir: str | Path | None = None) -> LrFindResult:
    """Sweep the LR on cfg's model, optimizer, augmentation and training split; plot and suggest."""
    if not (0 < min_lr < max_lr) or steps < 10:
        raise PodiumError("LR range test bounds are invalid.", expected="0 < min_lr < max_lr and steps >= 10",
                          received=f"min_lr={min_lr}, max_lr={max_lr}, steps={steps}",
                          fix="e.g. --min-lr 1e-7 --max-lr 10 --steps 200")
    out_dir = Path(out_dir) if out_dir else Path(cfg.runs_dir) / "lr-find" / cfg.run_id
    data = data or load_labeled_data(cfg, task, progress=False)
    train_pos, val_pos = data.fold_positions(cfg.folds[0])
    keras.utils.set_random_seed(cfg.seed)
    batches, _ = make_loaders(cfg, task, data, train_pos, val_pos)
    constant = dataclasses.replace(cfg, schedule="constant", lr=min_lr)  # the sweep sets the LR itself
    model = task.build_model(cfg, data.num_classes)
    model.compile(optimizer=make_optimizer(constant, len(batches)),
                  loss=task.compile_arguments(cfg, data.num_classes)["loss"])  # the task's own training loss

    lrs, losses, smoothed = [], [], []
    average, best, diverged = 0.0, math.inf, False
    for step in range(steps):
        position = step % len(batches)
        if position == 0 and step:
            batches.on_epoch_end()
        lr = lr_schedule(step, steps, min_lr, max_lr)
        model.optimizer.learning_rate.assign(lr)
        x, y = batches[position]
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        lrs.append(lr)
        losses.append(loss)
        if not math.isfinite(loss):
            smoothed.append(math.inf)
            diverged = True
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        value = average / (1 - SMOOTHING ** (step + 1))
        smoothed.append(value)
        best = min(best, value)
        if step >= MIN_STEPS_BEFORE_STOP and value > DIVERGE_FACTOR * best:
            diverged = True
            break

    lrs_a, losses_a, smoothed_a = np.array(lrs), np.array(losses), np.array(smoothed)
    min_loss_lr, steepest_lr = _landmarks(lrs_a, smoothed_a)
    suggested = max(min_loss_lr / SUGGEST_BELOW_MINIMUM, min_lr)
    frame = pd.DataFrame({"step": np.arange(len(lrs_a)), "lr": lrs_a, "loss": losses_a, "smoothed": smoothed_a})
    csv = write_csv(out_dir / "lr_find.csv", frame)
    plot = plot_lr_find(lrs_a, losses_a, smoothed_a, suggested, steepest_lr, out_dir / "lr_find.png")
    return LrFindResult(lrs=lrs_a, losses=losses_a, smoothed=smoothed_a, min_loss_lr=min_loss_lr,
                        steepest_lr=steepest_lr, suggested_lr=suggested, diverged=diverged, csv=csv, plot=plot)


def _landmarks(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    finite = np.isfinite(smoothed)
    lowest = int(np.argmin(np.where(finite, smoothed, np.inf)))
    if lowest < 2:
        return float(lrs[lowest]), float(lrs[lowest])
    slope = np.gradient(smoothed[:lowest + 1], np.log10(lrs[:lowest + 1]))
    return float(lrs[lowest]), float(lrs[int(np.argmin(slope))])


def plot_lr_find(lrs: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, suggested: float,
                 steepest: float, out_path: Path) -> Path:
    figure = new_figure((7, 4), 110)
    axis = figure.subplots()
    axis.plot(lrs, losses, color="0.75", lw=0.8, label="loss per step")
    shown = np.isfinite(smoothed)
    axis.plot(lrs[shown], smoothed[shown], color="C0", label="smoothed")
    axis.axvline(suggested, color="C2", ls="--", label=f"suggested start {suggested:.2g}")
    axis.axvline(steepest, color="C1", ls=":", label=f"steepest descent {steepest:.2g}")
    finite = smoothed[shown]
    if finite.size:
        axis.set_ylim(top=min(float(np.nanmax(losses[np.isfinite(losses)])), 3 * float(finite.min()) + 0.5),
                      bottom=0.9 * float(np.nanmin(losses[np.isfinite(losses)])))
    axis.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_png(figure, out_path)
