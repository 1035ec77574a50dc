"""CLI verbs of the tasks area: prune (the data-pruning experiment on generated shapes) and synth
(the ellipse-and-rectangle generator, written to files). Handlers print; the work is in experiments/pruning.py,
experiments/synthetic.py and experiments/synthetic_files.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from podium.lazy import LazyModule
# imported on first use: `podium --help` loads none of this
config = LazyModule("podium.config")
io = LazyModule("podium.io")
pruning = LazyModule("podium.experiments.pruning")
synthetic = LazyModule("podium.experiments.synthetic")
synthetic_files = LazyModule("podium.experiments.synthetic_files")
tasks = LazyModule("podium.tasks")

AddVerb = Callable[..., argparse.ArgumentParser]


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli/main.py's `verb(name, handler, help, config=True)` helper."""
    prune = verb("prune", _cmd_prune, "data pruning on generated shapes: samples kept out of N, and "
                                      "kept-only vs all-N scored on a fresh independent set")
    prune.add_argument("--n", type=int, default=1000, help="samples the selection walks through")
    prune.add_argument("--n-val", type=int, default=200, help="validation samples (checkpoint choice)")
    prune.add_argument("--n-test", type=int, default=1000, help="fresh samples both models are scored on")
    prune.add_argument("--seeds", type=_seed_list, help="comma-separated seeds to repeat the experiment over "
                                                        "(default: the config's seed), with a mean ± sd table")
    prune.add_argument("--out", help="report folder (default: runs/<name>-prune-n<N>)")
    synth = verb("synth", _cmd_synth, "write the ellipse-and-rectangle shapes: RLE masks and boxes")
    synth.add_argument("--n", type=int, default=200)
    synth.add_argument("--size", type=int, default=128)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--object-probability", type=float, default=1.0, help="share of images with an ellipse")
    synth.add_argument("--out", default="data/shapes")


def _seed_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 7,8,9, got {text!r}") from None


def _cmd_prune(args) -> None:
    import dataclasses


    cfg = config.load_config(args.config, args.overrides)
    out = Path(args.out) if args.out else Path(cfg.runs_dir) / f"{cfg.name}-prune-n{args.n}"
    seeds = args.seeds or [cfg.seed]
    print(f"prune: task={cfg.task}, {args.n} samples at {cfg.resolved_image_size} px, threshold "
          f"{cfg.prune_threshold}, core {cfg.prune_core}, seeds {seeds} -> {out}", flush=True)
    reports = []
    for seed in seeds:
        seed_out = out / f"seed-{seed}" if len(seeds) > 1 else out
        reports.append(pruning.run_shapes_experiment(dataclasses.replace(cfg, seed=seed), tasks.get_task(cfg.task), args.n,
                                             args.n_val, args.n_test, seed_out,
                                             progress=lambda line: print(f"  {line}", flush=True)))
        print(reports[-1].text(), flush=True)
    if len(seeds) > 1:
        table = pruning.seed_summary(reports)
        io.write_text(out / "summary.md", table + "\n")
        print(table)


def _cmd_synth(args) -> None:
    shapes = synthetic.make_shapes(args.n, args.size, args.seed, args.object_probability)
    out = synthetic_files.write_shapes(shapes, args.out)
    print(f"synth: {args.n} images of {args.size} px -> {out}/train, train_ship_segmentations.csv, train_boxes.csv")
