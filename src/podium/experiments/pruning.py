"""Data pruning on generated shapes: how much of a training set does a model actually need?

Start from the first `prune_core` samples and train until the mean per-sample score on them reaches
`prune_threshold`. Then walk through the rest in order: look at the next `prune_chunk` samples, and
when one scores under 0.95 x threshold (the original experiment's margin), add it (the first
`prune_add` such, or `prune_add_share` of the kept set if that is more), train again until the kept
set is back at the threshold, and continue after it. Samples the current model already gets right are
never kept. The scan predicts the window in pieces that grow from the last gap between failures: the
model does not change inside a scan, so it finds what one prediction of the whole window finds, with a
fraction of the predictions (late in a selection most rounds end a few samples past the cursor).

The selection keeps one model across rounds (the point is to grow the set, not to re-train from
scratch 300 times); the *comparison* then trains kept-only and everything through the same
train_and_evaluate, with the same config, and scores both on a fresh, independent set.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from podium.config import ExperimentConfig
from podium.data.dataset import LabeledData, in_memory_data
from podium.data.pipeline import ImageBatches
from podium.errors import PodiumError
from podium.models.classifier import load_classifier
from podium.training.schedules import make_optimizer
from podium.experiments.synthetic import ShapeSet, make_shapes
from podium.io import write_json, write_text
from podium.runners.train import make_loaders, train_and_evaluate
from podium.tasks.base import Task

FAIL_MARGIN = 0.95  # the original experiment: `if val_iou < precision * 0.95`
FIRST_PIECE = 16  # samples the first scan predicts; later ones start from twice the last gap


@dataclass
class Selection:
    kept: np.ndarray  # positions into the data, in the order they were added
    n_seen: int
    rounds: int
    epochs: int
    steps: int  # gradient steps over all rounds: what the selection's own model cost, against an arm's epochs x batches
    kept_score: float  # mean per-sample score on the kept set at the end
    reached_threshold: bool  # the last round's training got the kept set to the threshold
    seconds: float
    n_predicted: int = 0  # samples predicted while scanning (a fixed prune_chunk would predict about rounds x chunk)
    model: keras.Model | None = field(default=None, repr=False, compare=False)  # the selection's own model


def per_sample_scores(task: Task, data: LabeledData, positions: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """One number per sample in 0..1: right class (classification), the data-pruning experiment's stepped IoU
    (segmentation), box IoU times right class (localization): the task's own (podium.tasks)."""
    return task.per_sample_scores(data, positions, predictions)


def select_samples(cfg: ExperimentConfig, task: Task, data: LabeledData, positions: np.ndarray | None = None,
                   progress: Callable[[str], None] | None = None) -> Selection:
    """The selection loop over `positions` (default: every row) in their order; see the module docstring.
    `progress` gets one line per round (the CLI prints it; the library does not)."""
    started = time.perf_counter()
    positions = np.arange(len(data.images)) if positions is None else np.asarray(positions)
    if len(positions) <= cfg.prune_core:
        raise PodiumError("Pruning needs more samples than its core set.", expected=f"> prune_core={cfg.prune_core}",
                          received=f"{len(positions)} samples", fix="lower prune_core or give more data")
    keras.utils.set_random_seed(cfg.seed)
    model = task.build_model(cfg, data.num_classes)
    steady = dataclasses.replace(cfg, schedule="constant")  # a schedule has no meaning across rounds
    # compiled once: recompiling every round would retrace the train step each time
    model.compile(optimizer=make_optimizer(steady, 1), **task.compile_arguments(cfg, data.num_classes))
    kept = list(positions[:cfg.prune_core])
    (epochs, steps), rounds = _train_until(model, steady, task, data, np.asarray(kept)), 1
    cursor, piece, n_predicted = cfg.prune_core, FIRST_PIECE, 0

    def scores_of(chunk: np.ndarray) -> np.ndarray:
        return per_sample_scores(task, data, chunk, _predict(model, data, chunk, cfg))

    while cursor < len(positions):
        want = max(cfg.prune_add, int(cfg.prune_add_share * len(kept)))
        failing, scanned, predicted = scan_window(scores_of, positions, cursor, cfg.prune_chunk,
                                                  FAIL_MARGIN * cfg.prune_threshold, want, piece)
        n_predicted += predicted
        piece = min(max(FIRST_PIECE, 2 * scanned), cfg.prune_chunk)
        cursor += scanned
        if len(failing) == 0:
            continue
        kept.extend(positions[failing])
        round_epochs, round_steps = _train_until(model, steady, task, data, np.asarray(kept))
        epochs, steps = epochs + round_epochs, steps + round_steps
        rounds += 1
        if progress is not None:
            progress(f"round {rounds}: seen {cursor} of {len(positions)}, kept {len(kept)}, "
                     f"{time.perf_counter() - started:.0f} s")
    kept_arr = np.asarray(kept)
    kept_score = float(per_sample_scores(task, data, kept_arr, _predict(model, data, kept_arr, cfg)).mean())
    return Selection(kept=kept_arr, n_seen=len(positions), rounds=rounds, epochs=epochs, steps=steps,
                     kept_score=kept_score, reached_threshold=kept_score >= cfg.prune_threshold,
                     seconds=time.perf_counter() - started, n_predicted=n_predicted, model=model)


def scan_window(scores_of: Callable[[np.ndarray], np.ndarray], positions: np.ndarray, cursor: int, window: int,
                fail_below: float, want: int, first_piece: int) -> tuple[np.ndarray, int, int]:
    """The first `want` samples scoring under `fail_below` among the `window` positions from `cursor`,
    predicted in pieces of first_piece, 2 x first_piece, ... that stop once `want` are found.

    Returns (their indices into `positions`, samples consumed: up to and including the last one found, or
    the whole window when none, samples predicted). The same failures as scoring the window at once,
    which is what the original experiment did with 1024 samples for every single sample it added."""
    end = min(cursor + window, len(positions))
    found: list[int] = []
    start, piece = cursor, max(1, first_piece)
    while start < end and len(found) < want:
        stop = min(start + piece, end)
        failing = start + np.flatnonzero(scores_of(positions[start:stop]) < fail_below)
        found.extend(int(i) for i in failing[:want - len(found)])
        start, piece = stop, 2 * piece
    scanned = found[-1] + 1 - cursor if found else end - cursor
    return np.asarray(found, dtype=int), scanned, start - cursor


def _train_until(model: keras.Model, cfg: ExperimentConfig, task: Task, data: LabeledData, kept: np.ndarray
                 ) -> tuple[int, int]:
    """Epochs on the kept set (with the config's augmentation) until its mean score reaches the threshold;
    returns (epochs, steps)."""
    train, _ = make_loaders(cfg, task, data, kept, kept[:1])
    for epoch in range(1, cfg.prune_max_epochs + 1):
        model.fit(train, epochs=1, verbose=0)
        if per_sample_scores(task, data, kept, _predict(model, data, kept, cfg)).mean() >= cfg.prune_threshold:
            return epoch, epoch * len(train)
    return cfg.prune_max_epochs, cfg.prune_max_epochs * len(train)


def _predict(model: keras.Model, data: LabeledData, positions: np.ndarray, cfg: ExperimentConfig) -> np.ndarray:
    batches = ImageBatches(data.images, positions, batch_size=max(cfg.batch_size, 64))
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)))
                           for (x,) in (batches[i] for i in range(len(batches)))])


# ---- the experiment on the ellipse-and-rectangle generator ---------------------------------------
# What the kept samples are compared with, each trained through the same train_and_evaluate and
# scored on the same fresh set. Fewer samples at the same epochs is also fewer steps, so two arms
# give the kept set (and a random set of its size) as many steps as all N get: the honest question
# is whether *these* samples beat *any* samples of that many.
# "selection" is no training: the selection loop's own model, scored as the original experiment scored it.
ARMS = ("selection", "all", "kept", "kept_same_steps", "random_same_steps")
ARM_LABELS = {"selection": "the selection's own model", "all": "all N", "kept": "kept, same epochs",
              "kept_same_steps": "kept, same steps as all N", "random_same_steps": "random of kept size, same steps"}


@dataclass
class PruningReport:
    task: str
    seed: int
    n_seen: int
    n_kept: int
    rounds: int
    selection_epochs: int
    kept_score_on_kept: float
    reached_threshold: bool
    epochs: dict  # arm -> epochs it trained for
    scores: dict  # arm -> scores on the fresh set of the model trained that way
    seconds: dict
    n_predicted: int = 0  # samples the selection's scans predicted
    steps: dict = field(default_factory=dict)  # arm -> gradient steps (a budget: early stopping may end sooner)

    @property
    def score_kept(self) -> dict:
        return self.scores["kept"]

    @property
    def score_all(self) -> dict:
        return self.scores["all"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def text(self) -> str:
        metrics = list(self.score_all)
        lines = [f"pruning ({self.task}, seed {self.seed}): kept {self.n_kept} of {self.n_seen} samples "
                 f"({100 * self.n_kept / self.n_seen:.1f}%) in {self.rounds} rounds, {self.n_predicted} scan "
                 f"predictions; kept-set score {self.kept_score_on_kept:.3f} "
                 f"(threshold {'reached' if self.reached_threshold else 'NOT reached'})",
                 f"{'trained on':<34}{'epochs':>7}{'steps':>7}" + "".join(f"{m:>12}" for m in metrics)]
        for arm, scores in self.scores.items():
            lines.append(f"{ARM_LABELS[arm]:<34}{self.epochs[arm]:>7}{self.steps.get(arm, '-'):>7}"
                         + "".join(f"{scores[m]:>12.4f}" for m in metrics))
        lines.append("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def seed_summary(reports: list[PruningReport]) -> str:
    """Mean and spread over seeds, as a markdown table: one seed cannot tell a selection from luck."""
    metrics = list(reports[0].score_all)
    kept = np.array([r.n_kept for r in reports])
    lines = [f"{len(reports)} seeds ({', '.join(str(r.seed) for r in reports)}); N = {reports[0].n_seen}; "
             f"kept {kept.mean():.0f} ± {kept.std():.0f} ({100 * kept.mean() / reports[0].n_seen:.1f}%), "
             f"per seed {', '.join(map(str, kept))}", "",
             "| trained on | " + " | ".join(f"{m} (mean ± sd)" for m in metrics) + " |",
             "|---|" + "---:|" * len(metrics)]
    for arm in ARMS:
        cells = []
        for metric in metrics:
            values = np.array([r.scores[arm][metric] for r in reports])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shapes_data(shapes: ShapeSet, task: Task, fold: int) -> LabeledData:
    """A ShapeSet as LabeledData, read as the task says (Task.shapes_label, shapes_targets): segmentation masks
    the ellipse, localization boxes it, classification asks 'is there one?'."""
    targets = getattr(shapes, task.shapes_targets) if task.shapes_targets else None
    return in_memory_data(shapes.images, getattr(shapes, task.shapes_label), np.full(len(shapes), fold),
                          list(task.shapes_classes), targets=targets, task=task.name)


def concat_data(*parts: LabeledData) -> LabeledData:
    targets = None if parts[0].targets is None else np.concatenate([p.targets for p in parts])
    return in_memory_data(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                          np.concatenate([p.folds for p in parts]), parts[0].classes, targets=targets,
                          task=parts[0].spec.task)


def subset(data: LabeledData, positions: np.ndarray) -> LabeledData:
    return in_memory_data(data.images[positions], data.labels[positions], data.folds[positions], data.classes,
                          targets=None if data.targets is None else data.targets[positions], task=data.spec.task,
                          ids=data.ids[positions])


def run_shapes_experiment(cfg: ExperimentConfig, task: Task, n: int, n_val: int, n_test: int, out_dir: str | Path | None = None,
                          progress: Callable[[str], None] | None = None) -> PruningReport:
    """The pruning experiment end to end on generated data: select from n, then every arm of ARMS on
    n_test fresh samples.

    Pool, validation (checkpoint choice) and test sets come from three generator seeds derived from
    cfg.seed, so another seed is another experiment. Classification uses images with an ellipse half
    the time (label: is there one?).
    """
    size = cfg.resolved_image_size
    pool, val, test = (shapes_data(make_shapes(k, size, cfg.seed * 3 + i, task.shapes_object_share), task, fold)
                       for i, (k, fold) in enumerate(((n, 1), (n_val, 0), (n_test, 0))))
    selection = select_samples(cfg, task, pool, progress=progress)
    scores = {"selection": score_set(task, test, _predict(selection.model, test, np.arange(n_test), cfg))}
    epochs, steps = {"selection": selection.epochs}, {"selection": selection.steps}
    seconds = {"selection": selection.seconds}
    keras.backend.clear_session()
    if progress is not None:
        progress(f"the selection's own model ({selection.epochs} epochs, {selection.steps} steps over "
                 f"{selection.rounds} rounds): "
                 + ", ".join(f"{k} {v:.3f}" for k, v in scores["selection"].items()))
    n_kept = len(selection.kept)
    same_steps = int(np.ceil(cfg.epochs * n / n_kept))
    random_rows = np.sort(np.random.default_rng(cfg.seed).choice(n, n_kept, replace=False))
    plan = {"all": (np.arange(n), cfg.epochs), "kept": (selection.kept, cfg.epochs),
            "kept_same_steps": (selection.kept, same_steps), "random_same_steps": (random_rows, same_steps)}
    for arm, (rows, arm_epochs) in plan.items():
        arm_cfg = dataclasses.replace(cfg, name=f"{cfg.name}-prune-{arm}-n{n}-s{cfg.seed}", epochs=arm_epochs)
        started = time.perf_counter()
        result = train_and_evaluate(arm_cfg, task, 0, data=concat_data(subset(pool, rows), val), force=True)
        seconds[f"train_{arm}"] = time.perf_counter() - started
        model = load_classifier(result.fold_dir / "best.keras", compile=False)
        scores[arm] = score_set(task, test, _predict(model, test, np.arange(n_test), cfg))
        epochs[arm], steps[arm] = arm_epochs, arm_epochs * int(np.ceil(len(rows) / cfg.batch_size))
        keras.backend.clear_session()
        if progress is not None:
            progress(f"trained {ARM_LABELS[arm]} ({len(rows)} samples, {arm_epochs} epochs, "
                     f"{seconds[f'train_{arm}']:.0f} s): " + ", ".join(f"{k} {v:.3f}" for k, v in scores[arm].items()))
    report = PruningReport(task=cfg.task, seed=cfg.seed, n_seen=n, n_kept=n_kept, rounds=selection.rounds,
                           selection_epochs=selection.epochs, kept_score_on_kept=selection.kept_score,
                           reached_threshold=selection.reached_threshold, epochs=epochs, scores=scores,
                           seconds=seconds, n_predicted=selection.n_predicted, steps=steps)
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out / "report.json", report.to_dict())
        write_text(out / "report.txt", report.text() + "\n")
        np.save(out / "kept_positions.npy", selection.kept)
    return report


def score_set(task: Task, data: LabeledData, predictions: np.ndarray) -> dict:
    """The numbers the report compares: the selection's per-sample score, plus the task's usual ones."""
    positions = np.arange(len(data.images))
    return {"per_sample": float(per_sample_scores(task, data, positions, predictions).mean()),
            **task.pruning_scores(data, predictions)}
