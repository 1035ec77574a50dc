"""Which TTA views pay off: held-out accuracy of a finished run's best checkpoint under each view set.

Each view is predicted once; every set is then the mean of its views' probabilities, so the table
costs one prediction per view. Writes benchmarks/results/tta-views-<run>.md.

    python benchmarks/tta_views.py --config configs/cifar10-cpu.yaml [key=value ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results")
VIEW_SETS = [["identity"], ["identity", "hflip"],
             ["identity", "hflip", "shift_left", "shift_right"],
             ["identity", "hflip", "shift_left", "shift_right", "shift_up", "shift_down"],
             ["identity", "hflip", "zoom_in"], ["identity", "hflip", "zoom_out"],
             ["identity", "hflip", "shift_left", "shift_right", "shift_up", "shift_down", "zoom_in", "zoom_out"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from podium.config import load_config
    from podium.data.dataset import load_labeled_data
    from podium.data.pipeline import ImageBatches
    from podium.io import write_text
    from podium.models.classifier import load_classifier
    from podium.tasks import get_task
    from podium.training import tta

    cfg = load_config(args.config, args.overrides)
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
    write_text(RESULTS / f"tta-views-{cfg.run_id}.md", text)
    print(text)


if __name__ == "__main__":
    main()
