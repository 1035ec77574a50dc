"""Which TTA views pay off: held-out accuracy of a finished run's best checkpoint under each view set.

Each view is predicted once; every set is then the mean of its views' probabilities, so the table
costs one prediction per view. Writes benchmarks/results/tta-views-<run>.md.

    python benchmarks/tta_views.py --config configs/cifar10-cpu.yaml [key=value ...] [--results DIR]
    python benchmarks/tta_views.py --smoke --results DIR  # trains a 1-epoch tiny demo run under DIR first: the
                                                           # test suite's check that the script runs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
SMOKE_RUN = ["val_split=0.2", "folds=[0]", "backbone=tiny_cnn", "image_size=32", "epochs=1", "schedule=constant",
             "tta=[identity]", "verbose=0"]
VIEW_SETS = [["identity"], ["identity", "hflip"],
             ["identity", "hflip", "shift_left", "shift_right"],
             ["identity", "hflip", "shift_left", "shift_right", "shift_up", "shift_down"],
             ["identity", "hflip", "zoom_in"], ["identity", "hflip", "zoom_out"],
             ["identity", "hflip", "shift_left", "shift_right", "shift_up", "shift_down", "zoom_in", "zoom_out"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", help="the finished run's config (required unless --smoke)")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result file goes")
    parser.add_argument("--smoke", action="store_true",
                        help="a 1-epoch tiny run of the demo, trained under --results, then its table")
    args = parser.parse_args()
    if not (args.config or args.smoke):
        parser.error("--config is required (or --smoke)")

    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.data.pipeline import ImageBatches
    from podium.io import write_text
    from podium.models.classifier import load_classifier
    from podium.tasks import get_task
    from podium.training import tta

    cfg = smoke_run(args.results) if args.smoke else load_config(args.config, args.overrides)
    data = load_labeled_data(cfg, get_task(cfg.task))
    _, val_pos = data.fold_positions(cfg.folds[0])
    model = load_classifier(cfg.run_dir / f"fold-{cfg.folds[0]}" / "best.keras", compile=False)
    batches = ImageBatches(data.images, val_pos, batch_size=256)
    views = sorted({view for views in VIEW_SETS for view in views}, key=tta.view_names().index)
    started = time.perf_counter()
    _, per_view = tta.predict_tta(model, batches, views)
    seconds = (time.perf_counter() - started) / len(views)
    truth = data.labels[val_pos]
    lines = [f"# TTA views on {cfg.run_id} (fold {cfg.folds[0]}, {len(val_pos)} held-out images)", "",
             f"one view costs {seconds:.1f} s here; a set costs its number of views times that", "",
             "| views | held-out accuracy |", "|---|---:|"]
    for views_in_set in VIEW_SETS:
        probs = np.mean([per_view[v] for v in views_in_set], axis=0)
        lines.append(f"| {', '.join(views_in_set)} | {np.mean(probs.argmax(1) == truth):.4f} |")
    text = "\n".join(lines) + "\n"
    write_text(args.results / f"tta-views-{cfg.run_id}.md", text)
    print(text)


def smoke_run(results: Path):
    """The demo unpacked and a tiny run of it trained under `results`: its config."""
    from podium.config import load_config
    from podium.tasks import get_task
    from podium.workflow import prepare_data, train_run

    cfg = load_config(DEMO_CONFIG, [f"data_dir={results / 'data'}", f"runs_dir={results / 'runs'}", *SMOKE_RUN])
    prepare_data(cfg.competition, get_task(cfg.task), cfg.data_dir)
    train_run(cfg, get_task(cfg.task), progress=False)
    return cfg


if __name__ == "__main__":
    main()
