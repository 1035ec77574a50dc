"""A run that fits the clock it is given: `time_budget` (minutes) plans the epochs from timed first steps.

With `time_budget` set (or a session limit given by a Kaggle training kernel, `session_budget`), each fold:
1. takes its share of the time left: (deadline - now) / folds left to train (the run's clock starts when
   `make train` starts, before it loads and caches the data, or else when its first fold starts);
2. times the real model on the real batches (`measure`): one step compiling the train function, then
   PROBE_STEPS steps; one validation batch compiling, then PROBE_VAL_STEPS batches. The weights are restored
   afterwards, so the probe trains nothing;
3. plans (`plan_epochs`, a pure function): the epochs that fit the share after a second compile (the model
   is compiled again with the optimizer built for the planned epochs) and the reserve for prediction,
   PLAN_SAFETY of it kept spare, capped by `epochs` (the upper bound when a budget is set);
4. trains a config whose schedule is built for the planned epochs (`planned_config`): one-cycle and cosine
   end at min_lr on the last planned epoch; warmup_epochs, lr_boundaries and unfreeze_epoch are scaled by
   planned / epochs, so the recipe keeps its shape (a 3-of-14-epoch warmup stays 3/14 of the run);
5. `BudgetGuard` stops before an epoch that would not end before the fold's deadline (the second line of
   defence when epochs slow down); the best checkpoint is kept as always.

The plan is written to fold-<k>/budget.json before training: a resumed fold keeps it (no new probe), and
the fold's metrics.json carries it (FoldResult.budget). A budget under one epoch plans one epoch and says
so (`warning`): one epoch is the least a fold can train, and a run that stopped with nothing would be worse.

The prediction reserve: the inference seconds per image measured by the validation probe x the TTA views
x (validation images, scored with TTA after training + the test images `make predict` runs through this
fold), x PREDICT_SAFETY, plus one compile (the best checkpoint is loaded and its predict function traced for
scoring, and again for predicting: lighter than the train and validation functions the compile was timed on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import keras

from podium.data.dataset import competition_root
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import write_json

BUDGET_FILE = "budget.json"  # fold-<k>/budget.json: the plan a fold made, kept by a resume
PROBE_STEPS = 8  # timed training steps after the compiling one
PROBE_VAL_STEPS = 4  # timed validation batches after the compiling one
PLAN_SAFETY = 0.1  # share of the time left that the plan keeps spare (epoch time varies with load)
PREDICT_SAFETY = 1.5  # x the measured inference time, for the prediction after training
KAGGLE_SESSION_HOURS = {"TPU": 9.0, "TpuV6E8": 9.0}  # Kaggle's default session limit by accelerator; else:
KAGGLE_DEFAULT_SESSION_HOURS = 12.0  # CPU and GPU sessions
KERNEL_MARGIN_SHARE = 0.05  # of a kernel's session, kept for what the plan cannot see (start-up, output saving)
KERNEL_MARGIN_MIN_SECONDS = 600.0  # at least 10 minutes

_clock: Callable[[], float] = time.monotonic
_run_started: dict[str, tuple[float, set]] = {}  # run folder -> (its clock's start, the folds started since)
_session_deadline: list[float] = []  # set by session_budget (a Kaggle training kernel's limit)


@dataclass(frozen=True)
class Measured:
    """What the probe timed, in seconds."""

    step: float  # one training step (steady state)
    compile: float  # the first calls' extra time: compiling the train and the validation functions
    val_batch: float  # one validation batch
    batch_size: int


@dataclass(frozen=True)
class Plan:
    epochs: int  # planned: what the schedule is built for
    max_epochs: int  # the config's epochs: the upper bound
    share_seconds: float  # this fold's share of the time left, when the plan was made
    epoch_seconds: float  # steps x step time + the validation pass
    reserve_seconds: float  # kept for prediction / TTA after training
    recompile_seconds: float  # the second compile (train and validation functions), with the planned schedule
    steps_per_epoch: int
    step_seconds: float
    validation_seconds: float  # one validation pass
    warning: str = ""  # set when not even one epoch fits: one epoch is planned anyway

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def plan_epochs(share_seconds: float, step_seconds: float, steps_per_epoch: int, validation_seconds: float,
                max_epochs: int, reserve_seconds: float = 0.0, recompile_seconds: float = 0.0,
                safety: float = PLAN_SAFETY) -> Plan:
    """The epochs that fit `share_seconds` (pure: every time is given). At least one, at most `max_epochs`."""
    if step_seconds <= 0 or steps_per_epoch < 1 or max_epochs < 1 or validation_seconds < 0:
        raise PodiumError("Cannot plan epochs from these measurements.",
                          expected="step seconds > 0, steps per epoch >= 1, epochs >= 1, validation seconds >= 0",
                          received=f"step {step_seconds}, steps {steps_per_epoch}, epochs {max_epochs}, "
                                   f"validation {validation_seconds}", fix="report this: the probe timed nothing")
    epoch = steps_per_epoch * step_seconds + validation_seconds
    usable = (share_seconds - reserve_seconds - recompile_seconds) * (1.0 - safety)
    fits = int(math.floor(usable / epoch)) if usable > 0 else 0
    warning = ""
    if fits < 1:
        warning = (f"the budget's share ({share_seconds:.0f} s, of which {reserve_seconds:.0f} s reserved for "
                   f"prediction) is under one epoch ({epoch:.1f} s): one epoch planned, the budget will be "
                   f"overrun by about {max(0.0, epoch + reserve_seconds + recompile_seconds - share_seconds):.0f} s")
    return Plan(epochs=min(max_epochs, max(1, fits)), max_epochs=max_epochs, share_seconds=share_seconds,
                epoch_seconds=epoch, reserve_seconds=reserve_seconds, recompile_seconds=recompile_seconds,
                steps_per_epoch=steps_per_epoch, step_seconds=step_seconds, validation_seconds=validation_seconds,
                warning=warning)


def planned_config(cfg, epochs: int):
    """cfg with the schedule built for `epochs` (<= cfg.epochs): warmup_epochs, lr_boundaries and unfreeze_epoch
    scaled by epochs / cfg.epochs. Only the fit sees it: the run id and folders stay the config's."""
    if epochs >= cfg.epochs:
        return cfg
    scale = epochs / cfg.epochs
    unfreeze = cfg.unfreeze_epoch
    if unfreeze:  # head-only then the whole network: both phases keep at least one epoch where there are two
        unfreeze = 0 if epochs < 2 else min(epochs - 1, max(1, round(unfreeze * scale)))
    return dataclasses.replace(cfg, epochs=epochs, warmup_epochs=cfg.warmup_epochs * scale,
                               lr_boundaries=[b * scale for b in cfg.lr_boundaries], unfreeze_epoch=unfreeze)


def budget_seconds(cfg) -> float | None:
    """The config's own budget in seconds, or None when time_budget is 0 (a kernel's session limit is
    session_budget's, taken apart in fold_deadline)."""
    if cfg.time_budget > 0:
        return cfg.time_budget * 60.0
    return None


@contextlib.contextmanager
def session_budget(seconds: float) -> Iterator[None]:
    """Inside, a run without its own time_budget fits the session: its deadline is now + seconds (a Kaggle
    training kernel's session limit less its margin, kernel_budget_seconds). A config's time_budget, when
    set, applies too: the earlier deadline wins."""
    _session_deadline.append(_clock() + seconds)
    try:
        yield
    finally:
        _session_deadline.pop()


def kernel_budget_seconds(timeout_seconds: int, accelerator: str) -> float:
    """A training kernel's budget: its session (timeout_seconds, or Kaggle's default for the accelerator)
    less the margin, KERNEL_MARGIN_SHARE of it and at least KERNEL_MARGIN_MIN_SECONDS."""
    session = float(timeout_seconds) if timeout_seconds > 0 else \
        3600.0 * KAGGLE_SESSION_HOURS.get(accelerator, KAGGLE_DEFAULT_SESSION_HOURS)
    return max(60.0, session - max(KERNEL_MARGIN_MIN_SECONDS, KERNEL_MARGIN_SHARE * session))


def start_clock(run_dir: Path) -> None:
    """Start the run's budget clock now (make train calls it before loading the data); without it, the first
    fold trained starts it."""
    _run_started[str(Path(run_dir).resolve())] = (_clock(), set())


def fold_deadline(cfg, run_dir: Path, fold: int, folds_left: int) -> float | None:
    """When this fold must be done (a _clock() time), or None without a budget: its share of what is left.

    The run's clock starts with `start_clock` (make train) or the first fold trained in this process; training
    a fold it already started (a resume in the same process, a search's next trial) starts it again."""
    deadlines = list(_session_deadline[-1:])
    seconds = budget_seconds(cfg)
    if seconds is not None:
        key = str(Path(run_dir).resolve())
        started, folds = _run_started.get(key, (0.0, set()))
        if key not in _run_started or fold in folds:
            started, folds = _clock(), set()
        _run_started[key] = (started, folds | {fold})
        deadlines.append(started + seconds)
    if not deadlines:
        return None
    now = _clock()
    return now + max(0.0, min(deadlines) - now) / max(1, folds_left)


def plan_fold(cfg, fold_dir: Path, deadline: float | None, model: keras.Model, compile_model: Callable,
              train, val, own_validation: bool, n_val: int) -> tuple:
    """(the config the fit follows, its BudgetGuard); (cfg, None) without a budget. A resumed fold keeps the
    plan in its budget.json; else `compile_model(cfg)` compiles the model for the probe, and the plan is saved."""
    if deadline is None:
        return cfg, None
    plan = read_plan(fold_dir)
    if plan is None:
        compile_model(cfg)
        measured = measure(model, train, val, own_validation, cfg.batch_size)
        views = len(dict.fromkeys(["identity", *cfg.tta]))
        plan = make_plan(cfg, measured, deadline, len(train), len(val), views, n_val, count_test_images(cfg))
        save_plan(fold_dir, plan)
    return planned_config(cfg, plan.epochs), BudgetGuard(plan, deadline, fold_dir)


def count_test_images(cfg) -> int:
    """The competition's test images in its index (what `make predict` will run through each fold); 0 without one."""
    index_path = competition_root(cfg)[1] / "index.parquet"
    if not index_path.is_file():
        return 0
    return int((load_index(index_path)["split"] == "test").sum())


def measure(model: keras.Model, train, val, own_validation: bool, batch_size: int) -> Measured:
    """Time the compiled `model` on `train` / `val` batches (keras PyDatasets); its weights are put back.
    Validation is timed as the epoch runs it: evaluate, or predict where EpochValidation validates."""
    weights = model.get_weights()
    steps = max(1, min(PROBE_STEPS, len(train) - 1))
    first = _timed(lambda: model.fit(train, epochs=1, steps_per_epoch=1, verbose=0))
    many = _timed(lambda: model.fit(train, epochs=1, steps_per_epoch=steps, verbose=0))
    run_val = (lambda n: model.predict(val, steps=n, verbose=0)) if own_validation else \
        (lambda n: model.evaluate(val, steps=n, verbose=0))
    val_steps = max(1, min(PROBE_VAL_STEPS, len(val) - 1))
    val_first = _timed(lambda: run_val(1))
    val_many = _timed(lambda: run_val(val_steps))
    model.set_weights(weights)
    step, val_batch = many / steps, val_many / val_steps
    return Measured(step=step, compile=max(0.0, first - step) + max(0.0, val_first - val_batch), val_batch=val_batch,
                    batch_size=batch_size)


def _timed(work: Callable[[], object]) -> float:
    started = _clock()
    work()
    return _clock() - started


def prediction_reserve(measured: Measured, views: int, n_val: int, n_test: int) -> float:
    """Seconds kept for what follows training: the fold's TTA scoring and its share of `make predict`."""
    per_image = measured.val_batch / max(1, measured.batch_size)
    return PREDICT_SAFETY * per_image * views * (n_val + n_test) + measured.compile


def make_plan(cfg, measured: Measured, deadline: float, steps_per_epoch: int, val_batches: int,
              views: int, n_val: int, n_test: int) -> Plan:
    """The plan for the fold, from the probe's times and the time left until `deadline`."""
    return plan_epochs(share_seconds=deadline - _clock(), step_seconds=measured.step,
                       steps_per_epoch=steps_per_epoch, validation_seconds=measured.val_batch * val_batches,
                       max_epochs=cfg.epochs, reserve_seconds=prediction_reserve(measured, views, n_val, n_test),
                       recompile_seconds=measured.compile)


def save_plan(fold_dir: Path, plan: Plan) -> Path:
    return write_json(Path(fold_dir) / BUDGET_FILE, plan.to_dict())


def read_plan(fold_dir: Path) -> Plan | None:
    """The plan fold_dir's fold made before it was interrupted; None when it made none."""
    path = Path(fold_dir) / BUDGET_FILE
    if not path.is_file():
        return None
    known = {f.name for f in dataclasses.fields(Plan)}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return Plan(**{k: v for k, v in values.items() if k in known})
    except (ValueError, TypeError, AttributeError) as exc:  # not JSON, not a mapping, a field missing
        raise PodiumError(f"The fold's time-budget plan {path} is damaged: the resumed fold cannot follow it.",
                          expected=f"the JSON podium wrote, with {', '.join(sorted(known))}",
                          received=f"{type(exc).__name__}: {exc}",
                          fix="retrain the fold from the start: `make train FORCE=1`") from exc


def record(fold_dir: Path) -> dict:
    """budget.json with what the guard added (stopped_at_epoch), for the fold's result; {} without a plan."""
    path = Path(fold_dir) / BUDGET_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class BudgetGuard(keras.callbacks.Callback):
    """Stops training before an epoch that would not end by `deadline` (the plan's reserve kept), and logs the
    planned epochs into every epoch's row of history.csv (`planned_epochs`)."""

    def __init__(self, plan: Plan, deadline: float, fold_dir: Path):
        super().__init__()
        self.plan, self.deadline, self.fold_dir = plan, deadline, Path(fold_dir)
        self.started, self.last_end, self.durations = 0.0, None, []

    def on_train_begin(self, logs=None):
        self.started, self.last_end = _clock(), None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["planned_epochs"] = self.plan.epochs
        now = _clock()
        # a fit's first epoch includes compiling its train function (planned apart, as recompile_seconds)
        self.durations.append(now - self.last_end if self.last_end is not None else
                              max(0.0, now - self.started - self.plan.recompile_seconds))
        self.last_end = now
        upcoming = max(self.durations[-1], sum(self.durations) / len(self.durations))
        if epoch + 1 < self.plan.epochs and now + upcoming > self.deadline - self.plan.reserve_seconds:
            self.model.stop_training = True
            write_json(self.fold_dir / BUDGET_FILE, {
                **record(self.fold_dir), "stopped_at_epoch": epoch + 1,
                "stopped_because": f"epoch {epoch + 2} would take about {upcoming:.0f} s and end past the fold's "
                                   f"deadline (its prediction reserve kept)"})


def describe(fold: int, values: dict) -> list[str]:
    """What a fold's budget planned and did, as lines for the CLI."""
    if not values:
        return []
    lines = [f"budget: fold {fold}: planned {values['epochs']} of at most {values['max_epochs']} epochs "
             f"({values['epoch_seconds']:.1f} s each, measured) in a share of {values['share_seconds'] / 60:.1f} "
             f"min, {values['reserve_seconds']:.0f} s reserved for prediction"]
    if values.get("warning"):
        lines.append(f"budget: fold {fold}: {values['warning']}")
    if values.get("stopped_at_epoch"):
        lines.append(f"budget: fold {fold}: stopped after epoch {values['stopped_at_epoch']}: "
                     f"{values['stopped_because']}")
    return lines
