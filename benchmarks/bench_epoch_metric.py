"""What the competition's metric costs per epoch (issue 20: at most 5% on the demo).

Side by side in one process, the same fold, model and data: monitor=metric with metric=accuracy (Keras
logs val_accuracy during fit's own validation) against registry metrics Keras cannot log (log loss,
macro F1, MAP@3, QWK), which podium.training.validation computes: fit then gets no validation_data and the
callback predicts the validation part once per epoch and writes val_loss, val_accuracy and val_<metric>.
Arms alternate `rounds` times; each arm's steady epoch (median after the first) is its best over rounds,
since other processes on a shared machine only ever slow a run down. Whole epochs are noisy on a loaded
machine, so the validation passes are timed on their own too: fit's (on_test_begin to on_test_end, the
accuracy arm) and podium's (EpochValidation.on_epoch_end: predict, loss, compile metrics and the metric);
the per-epoch cost is then (podium's pass - fit's pass) / the accuracy arm's epoch.

Writes benchmarks/results/epoch-metric.{json,md}.

    python benchmarks/bench_epoch_metric.py [--epochs 5] [--rounds 3] [--repeat 2] [--results DIR] [--smoke]

--smoke: accuracy and log loss only, 256 training rows, 2 epochs, one round, the demo and the runs under
--results (the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import epoch_timer, steady  # noqa: E402

RESULTS = Path(__file__).with_name("results")
METRICS = ("accuracy", "log_loss", "macro_f1", "map_at_k(k=3)", "qwk")
TARGET = 1.05  # issue 20: the per-epoch metric may slow an epoch by 5% at most
SMOKE = {"epochs": 2, "rounds": 1, "repeat": 1, "rows": 256, "metrics": ["accuracy", "log_loss"]}


def validation_timers():
    """A callback timing fit's own validation pass, and podium's EpochValidation timing itself (wrapped)."""
    import keras

    from podium.training import validation

    class FitValidationTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_test_begin(self, logs=None):
            self._started = time.perf_counter()

        def on_test_end(self, logs=None):
            self.seconds.append(time.perf_counter() - self._started)

    podium_seconds: list[float] = []
    original = validation.EpochValidation.on_epoch_end
    if not hasattr(original, "timed"):
        def timed(self, epoch, logs=None):
            started = time.perf_counter()
            original(self, epoch, logs)
            podium_seconds.append(time.perf_counter() - started)

        timed.timed = podium_seconds
        validation.EpochValidation.on_epoch_end = timed
    return FitValidationTimer, validation.EpochValidation.on_epoch_end.timed


def epoch_seconds(data_dir: Path, runs_dir: Path, epochs: int, rounds: int, repeat: int,
                  metrics: tuple[str, ...] = METRICS, rows: int = 0) -> dict:
    from podium import tasks
    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.runners.train import train_and_evaluate
    from podium.training.validation import needs_own_validation

    base = [f"data_dir={data_dir}", f"runs_dir={runs_dir}", "val_split=0.2", "folds=[0]", "backbone=tiny_cnn",
            "image_size=32", "batch_size=64", f"epochs={epochs}", "schedule=constant", "verbose=0",
            "augment=[flip,crop]", "tta=[identity]", f"early_stopping_patience={epochs + 1}"]
    configs = {metric: load_config(None, base + [f"metric={metric}", f"name=bench-{k}"])
               for k, metric in enumerate(metrics)}
    data = load_labeled_data(configs["accuracy"], tasks.get_task("classification"))
    train_pos, val_pos = data.fold_positions(0)
    train_pos = np.tile(train_pos, repeat)[:rows or None]
    data.fold_positions = lambda fold: (train_pos, val_pos)  # the tiled rows: an epoch as long as a real one
    seconds: dict[str, list[float]] = {metric: [] for metric in metrics}
    validation_s: dict[str, list[float]] = {metric: [] for metric in metrics}
    scores: dict[str, float] = {}
    fit_timer_class, podium_seconds = validation_timers()
    for _ in range(rounds):
        for metric, cfg in configs.items():
            timer, fit_validation = epoch_timer(), fit_timer_class()
            podium_seconds.clear()
            result = train_and_evaluate(cfg, tasks.get_task(cfg.task), 0, data=data,
                                        extra_callbacks=[timer, fit_validation], force=True)
            seconds[metric].append(steady(timer.seconds))
            validation_s[metric].append(steady(podium_seconds if podium_seconds else fit_validation.seconds))
            scores[metric] = result.val_score
    best = {metric: min(values) for metric, values in seconds.items()}
    passes = {metric: min(values) for metric, values in validation_s.items()}
    return {"n_train": int(len(train_pos)), "n_val": int(len(val_pos)), "epochs": epochs, "rounds": rounds,
            "repeat": repeat,
            "arms": {metric: {"computed_by": "podium.training.validation" if needs_own_validation(configs[metric])
                              else "Keras (fit's validation)", "monitor": configs[metric].resolved_monitor,
                              "mode": configs[metric].resolved_mode, "epoch_s": best[metric],
                              "epoch_s_all": seconds[metric], "ratio_to_accuracy": best[metric] / best["accuracy"],
                              "validation_s": passes[metric], "validation_s_all": validation_s[metric],
                              "cost_per_epoch": (passes[metric] - passes["accuracy"]) / best["accuracy"],
                              "val_score": scores[metric]}
                     for metric in metrics}}


def markdown(result: dict) -> str:
    lines = ["# The metric per epoch: cost on the demo", "",
             f"machine: {platform.machine()}, {os.cpu_count()} cores; keras backend "
             f"{result['backend']}; one process, arms alternating, best of {result['rounds']} rounds each", "",
             f"tiny_cnn @ 32 px, batch 64, augment flip+crop, {result['n_train']} training rows (the demo's "
             f"x{result['repeat']}), {result['n_val']} validation rows; steady epoch = median after the first, "
             "validation and every callback included. The ratio is the result (target <= "
             f"{TARGET:.2f}, issue 20); absolute seconds depend on the machine.", "",
             "| metric | computed by | monitor (mode) | validation pass s | cost per epoch | epoch s | epoch / "
             "accuracy's | val score |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for metric, arm in result["arms"].items():
        lines.append(f"| {metric} | {arm['computed_by']} | {arm['monitor']} ({arm['mode']}) | "
                     f"{arm['validation_s']:.3f} | {arm['cost_per_epoch']:+.1%} | {arm['epoch_s']:.3f} | "
                     f"{arm['ratio_to_accuracy']:.3f} | {arm['val_score']:.4f} |")
    worst = max(arm["cost_per_epoch"] for arm in result["arms"].values())
    lines += ["", "validation pass: fit's own (accuracy arm) or podium's EpochValidation (the others), steady, best "
              "of rounds; cost per epoch = (this pass - fit's pass) / the accuracy arm's epoch. Whole-epoch ratios "
              f"are shown too, but on a loaded machine they carry its noise. Load average at the start: "
              f"{result.get('load', '?')}.", "",
              f"worst cost per epoch {worst:+.1%}: {'within' if 1 + worst <= TARGET else 'OVER'} the 5% target."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--suffix", default="", help="appended to the result files' names (e.g. -jax)")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), help="accuracy first: the reference arm")
    parser.add_argument("--rows", type=int, default=0, help="training rows kept after the repeat (0: all)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE, data_dir=str(args.results / "data"))
        args = parser.parse_args()

    import keras

    from podium.io import write_json, write_text
    from podium.tasks import get_task
    from podium.workflow import prepare_data

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="podium-bench-"))
    prepare_data("demo", get_task("classification"), str(data_dir))
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    started = time.perf_counter()
    runs_dir = args.results / "runs" if args.smoke else Path(tempfile.mkdtemp(prefix="podium-bench-runs-"))
    result = epoch_seconds(data_dir, runs_dir, args.epochs, args.rounds, args.repeat, tuple(args.metrics),
                           args.rows)
    result.update(backend=keras.backend.backend(), seconds=time.perf_counter() - started, load=load)
    write_json(args.results / f"epoch-metric{args.suffix}.json", result)
    text = markdown(result)
    write_text(args.results / f"epoch-metric{args.suffix}.md", text)
    print(text)


if __name__ == "__main__":
    main()
