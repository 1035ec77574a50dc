"""Transfer learning without ImageNet: pretrain on five CIFAR-10 classes, fine-tune on the five others.

    python benchmarks/transfer_cifar10.py <folder with the CIFAR-10 package: train.zip, test.zip, ...>
        [--seeds 1 2 3] [--budgets 200 50] [--pretrain-epochs 15] [--epochs 30 --unfreeze-epoch 10] [--reuse]
        [--results DIR] [--smoke]

Builds two competitions in Kaggle layout from the package (specs: benchmarks/transfer/):
  A: airplane, automobile, bird, cat, deer, all 25,000 train images; the backbone is pretrained here once;
  B: dog, frog, horse, ship, truck, 300 labelled images a class (200 train / 100 validation, or 50 / 250:
     one split per budget for every seed) and 1,000 more a class as a test set whose answers podium never sees.
Then, per seed, the same tiny CNN on B from scratch and fine-tuned from A's runs/<id>/fold-0/best.keras
(weights=<that file>, a head-only phase, then the whole net at lr x unfreeze_lr_factor with BatchNorm in
inference mode; the factor at podium's default 0.1 and, as an ablation, at 1), every step a podium command. Scores each submission against the held-back answers and writes
benchmarks/results/transfer-cifar10.{md,json,png}; the commands' output goes to runs/transfer-cifar10/log.txt.

--smoke: the embedded demo as the package (200 images a class), 20 labelled and 10 test images a class on B,
one seed, one budget, one fine-tuned arm, 1 + 2 epochs; data, runs, submissions and results all under --results
(the test suite's check that the script runs).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path("transfer-cifar10")  # in the runs folder: sources, answers, log
RESULTS = ROOT / "benchmarks" / "results"
DEMO = ROOT / "src" / "podium" / "demo"
SPEC_A, SPEC_B = "benchmarks/transfer/cifar10-transfer-a.yaml", "benchmarks/transfer/cifar10-transfer-b.yaml"
PRETRAIN, FINETUNE = "benchmarks/transfer/pretrain-a.yaml", "benchmarks/transfer/finetune-b.yaml"
A_CLASSES = ("airplane", "automobile", "bird", "cat", "deer")
B_CLASSES = ("dog", "frog", "horse", "ship", "truck")
B_LABELLED, B_TEST = 300, 1000  # images a class
A_TEST = 100  # unlabelled package test images, only because a competition has a test set
UNFREEZE_EPOCH = 10  # of finetune-b.yaml's 30 epochs
BUDGETS = (200, 50)  # labelled train images a class on B, of B_LABELLED; the rest validate
UNFREEZE_LR_FACTORS = (0.1, 1.0)  # podium's default, and the unfrozen net at the head's rate (an ablation)
PICK_SEED = 0  # which images of a class go to B's labelled and test parts
SMOKE = {"package": DEMO, "seeds": [1], "budgets": [10], "labelled": 20, "test_per_class": 10, "pretrain_epochs": 1,
         "epochs": 2, "unfreeze_epoch": 1, "unfreeze_lr_factors": [0.1]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path, nargs="?",
                        help="folder with the CIFAR-10 package (train.zip, test.zip); required unless --smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS),
                        help=f"labelled train images a class on B (of {B_LABELLED}; the rest validate)")
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--epochs", type=int, help="B's epochs, every arm (default: finetune-b.yaml's)")
    parser.add_argument("--unfreeze-epoch", type=int, default=UNFREEZE_EPOCH)
    parser.add_argument("--unfreeze-lr-factors", type=float, nargs="+", default=list(UNFREEZE_LR_FACTORS),
                        help="one fine-tuned arm per factor (podium's default 0.1 first)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the runs an earlier call finished (same run ids) and the timings it recorded")
    parser.add_argument("--labelled", type=int, default=B_LABELLED, help="labelled images a class on B")
    parser.add_argument("--test-per-class", type=int, default=B_TEST, help="held-back test images a class on B")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the result files go")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny and quick, everything under --results: checks that the script runs")
    args = parser.parse_args(argv)
    if args.smoke:  # explicit arguments still win over the smoke sizes
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)
    elif args.package is None:
        parser.error("the package folder is required (or --smoke)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    package, results = args.package.resolve(), args.results.resolve()
    os.chdir(ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    # where data, runs and submissions go: podium's defaults (data/, runs/, submissions/), or all under --results
    place = [f"{key}_dir={results / key}" for key in ("data", "runs", "submissions")] if args.smoke else []
    work = (results / "runs" if args.smoke else Path("runs")) / WORK
    work.mkdir(parents=True, exist_ok=True)
    runner = Podium((work / "log.txt").open("a" if args.reuse else "w", encoding="utf-8"),
                    earlier_timings(results / "transfer-cifar10.json") if args.reuse else {}, work)

    answers = build_sources(package, work, args.labelled, args.test_per_class)
    data_dir = ["--data-dir", str(results / "data")] if args.smoke else []
    runner("data", "--competition", SPEC_A, "--source", str(work / "src-a"), *data_dir)
    runner("data", "--competition", SPEC_B, "--source", str(work / "src-b"), *data_dir)

    pre_overrides = [*place, f"epochs={args.pretrain_epochs}"]
    runner("folds", "--config", PRETRAIN, *pre_overrides)
    pretrain_s = runner.train(PRETRAIN, pre_overrides)
    pre_id = run_id(PRETRAIN, pre_overrides)
    pretrained = work.parent / pre_id / "fold-0" / "best.keras"
    pre_metrics = json.loads((work.parent / pre_id / "fold-0" / "metrics.json").read_text())

    epochs = [f"epochs={args.epochs}"] if args.epochs else []
    arms = {"scratch": [*place, "name=transfer-b-scratch"]}
    for factor in args.unfreeze_lr_factors:
        arms[fine_tuned(factor)] = [*place, "name=transfer-b-finetune", f"weights={pretrained}",
                                    "freeze_backbone=true", f"unfreeze_epoch={args.unfreeze_epoch}",
                                    f"unfreeze_lr_factor={factor:g}"]
    runs = []
    for budget in args.budgets:
        split = [f"val_split={1 - budget / args.labelled:.4f}"]  # 200 a class: finetune-b.yaml's own 0.3333
        runner("folds", "--config", FINETUNE, *place, *split)
        for seed in args.seeds:
            for arm, overrides in arms.items():
                overrides = [*overrides, *split, *epochs, f"seed={seed}"]
                train_s = runner.train(FINETUNE, overrides)
                predict_s = runner.predict(FINETUNE, overrides)
                runs.append(describe_run(arm, budget, seed, overrides, train_s, predict_s, answers))

    result = {
        "design": {"a_classes": A_CLASSES, "b_classes": B_CLASSES, "b_labelled_per_class": args.labelled,
                   "b_test_per_class": args.test_per_class, "budgets": args.budgets,
                   "unfreeze_epoch": args.unfreeze_epoch,
                   "configs": [PRETRAIN, FINETUNE], "specs": [SPEC_A, SPEC_B], "seeds": args.seeds},
        "pretrain": {"run": pre_id, "val_accuracy": pre_metrics["val_score"], "n_train": pre_metrics["n_train"],
                     "n_val": pre_metrics["n_val"], "epochs": pre_metrics["epochs_run"],
                     "train_seconds": pretrain_s[0], "train_cpu_seconds": pretrain_s[1], "checkpoint": str(pretrained)},
        "runs": runs,
        "summary": summarize(runs),
        "commands": runner.commands,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "transfer-cifar10.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(runs, args.unfreeze_epoch, results / "transfer-cifar10.png")
    text = markdown(result)
    (results / "transfer-cifar10.md").write_text(text)
    print(text)
    return 0


# ---- the two competitions ---------------------------------------------------------------------------
def build_sources(package: Path, work: Path, labelled: int = B_LABELLED, test_per_class: int = B_TEST
                  ) -> dict[str, str]:
    """src-a/ and src-b/ in the package's own layout; returns B's held-back test answers (id -> class)."""
    rng = random.Random(PICK_SEED)
    with zipfile.ZipFile(package / "train.zip") as train, zipfile.ZipFile(package / "test.zip") as test:
        by_class: dict[str, list[str]] = {}
        for name in sorted(train.namelist()):
            parts = name.split("/")
            if name.endswith(".jpg") and len(parts) == 3:
                by_class.setdefault(parts[1], []).append(name)
        unlabelled = sorted((n for n in test.namelist() if n.endswith(".jpg")),
                            key=lambda n: int(Path(n).stem))[:A_TEST]
        write_package(work / "src-a", train, [(n, n) for c in A_CLASSES for n in by_class[c]],
                      test, [(n, n) for n in unlabelled])

        chosen, held_back = [], []
        for cls in B_CLASSES:
            names = by_class[cls][:]
            rng.shuffle(names)
            chosen += [(n, n) for n in names[:labelled]]
            held_back += [(n, cls) for n in names[labelled:labelled + test_per_class]]
        rng.shuffle(held_back)
        answers = {str(i): cls for i, (_, cls) in enumerate(held_back, start=1)}
        write_package(work / "src-b", train, chosen, train,
                      [(n, f"test/{i}.jpg") for i, (n, _) in enumerate(held_back, start=1)])
    with (work / "b-test-answers.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "label"), *answers.items()])
    return answers


def write_package(folder: Path, train_zip: zipfile.ZipFile, train: list[tuple[str, str]],
                  test_zip: zipfile.ZipFile, test: list[tuple[str, str]]) -> None:
    """train.zip, test.zip (members renamed: (source member, new name)) and a placeholder sample submission."""
    folder.mkdir(parents=True, exist_ok=True)
    for archive, source, members in (("train.zip", train_zip, train), ("test.zip", test_zip, test)):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:  # JPEGs do not compress
            for member, new_name in members:
                out.writestr(new_name, source.read(member))
        (folder / archive).write_bytes(buffer.getvalue())
    ids = [Path(new_name).stem for _, new_name in test]
    first_class = train[0][1].split("/")[1]
    with (folder / "sample_submission.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "label"), *((i, first_class) for i in ids)])


# ---- running podium ---------------------------------------------------------------------------------
Timing = tuple[float, float]  # (wall seconds, CPU seconds)


class Podium:
    """Runs `podium <verb> ...` as a user would (this interpreter's podium), logs it, returns its wall and CPU
    seconds: on a shared machine the CPU seconds (user + system) say what the command cost, the wall its wait.
    `earlier`: {verb: {run id: Timing}} of runs to keep (--reuse) instead of training or predicting again."""

    def __init__(self, log, earlier: dict[str, dict[str, Timing]], work: Path = Path("runs") / WORK):
        self.log, self.earlier, self.commands, self.work = log, earlier, [], work

    def __call__(self, *args: str) -> Timing:
        command = "podium " + shlex.join(args)
        self.log.write(f"$ {command}\n")
        self.log.flush()
        started, cpu_before = time.perf_counter(), _children_cpu()
        done = subprocess.run([sys.executable, "-m", "podium.cli.main", *args], stdout=self.log,
                              stderr=subprocess.STDOUT, text=True)
        seconds, cpu = round(time.perf_counter() - started, 1), round(_children_cpu() - cpu_before, 1)
        if done.returncode:
            raise SystemExit(f"failed ({done.returncode}): {command}; see {self.work / 'log.txt'}")
        self.commands.append({"command": command, "wall_seconds": seconds, "cpu_seconds": cpu, "reused": False})
        return seconds, cpu

    def train(self, config: str, overrides: list[str]) -> Timing:
        run = run_id(config, overrides)
        return self._reused("train", run, (self.work.parent / run / "fold-0" / "metrics.json").is_file(),
                            "train", "--config", config, *overrides, "--force")

    def predict(self, config: str, overrides: list[str]) -> Timing:
        # lazy: podium loads TensorFlow; --help and building the competitions need none of it
        from podium.config import load_config
        from podium.submission.record import submission_path

        run = run_id(config, overrides)
        return self._reused("predict", run, submission_path(load_config(config, overrides)).is_file(),
                            "predict", "--config", config, *overrides)

    def _reused(self, verb: str, run: str, finished: bool, *args: str) -> Timing:
        timing = self.earlier.get(verb, {}).get(run)
        if not (finished and timing):
            return self(*args)
        self.commands.append({"command": "podium " + shlex.join(args), "wall_seconds": timing[0],
                              "cpu_seconds": timing[1], "reused": True})
        return timing


def earlier_timings(path: Path) -> dict[str, dict[str, Timing]]:
    """What an earlier call recorded for each run it trained and predicted."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    runs = [earlier["pretrain"], *earlier["runs"]]
    return {verb: {r["run"]: (r[f"{verb}_seconds"], r[f"{verb}_cpu_seconds"]) for r in runs if f"{verb}_seconds" in r}
            for verb in ("train", "predict")}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # of the commands run and waited for so far
    return usage.ru_utime + usage.ru_stime


def run_id(config: str, overrides: list[str]) -> str:
    # lazy: podium loads TensorFlow; --help and building the competitions need none of it
    from podium.config import load_config

    return load_config(config, overrides).run_id


def describe_run(arm: str, budget: int, seed: int, overrides: list[str], train_s: Timing, predict_s: Timing,
                 answers: dict[str, str]) -> dict:
    # lazy: podium loads TensorFlow; --help and building the competitions need none of it
    from podium.config import load_config
    from podium.submission.record import submission_path

    cfg = load_config(FINETUNE, overrides)
    fold = cfg.run_dir / "fold-0"
    metrics = json.loads((fold / "metrics.json").read_text())
    with submission_path(cfg).open(newline="") as handle:
        predicted = {row["id"]: row["label"] for row in csv.DictReader(handle)}
    correct = sum(predicted[i] == label for i, label in answers.items())
    with (fold / "history.csv").open(newline="") as handle:
        history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return {"arm": arm, "budget": budget, "seed": seed, "run": cfg.run_id, "overrides": overrides,
            "test_accuracy": correct / len(answers), "n_test": len(answers),
            "val_accuracy": metrics["val_score"], "best_epoch": metrics["best_epoch"], "n_train": metrics["n_train"],
            "n_val": metrics["n_val"], "train_seconds": train_s[0], "train_cpu_seconds": train_s[1],
            "predict_seconds": predict_s[0], "predict_cpu_seconds": predict_s[1],
            "seconds_per_epoch": round(metrics["seconds_per_epoch"], 2),
            "history": {key: [row[key] for row in history] for key in ("val_accuracy", "accuracy", "learning_rate")}}


# ---- what it says -----------------------------------------------------------------------------------
def fine_tuned(factor: float) -> str:
    return f"fine-tuned, lr x {factor:g}"


def summarize(runs: list[dict]) -> list[dict]:
    """Per budget and arm: test accuracy over seeds; per budget and fine-tuned arm: minus scratch, seed by seed."""
    summary = []
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    for budget in dict.fromkeys(r["budget"] for r in runs):
        by_arm = {arm: [r for r in runs if r["budget"] == budget and r["arm"] == arm] for arm in arms}
        for arm, mine in by_arm.items():
            summary.append({"budget": budget, "arm": arm, **_spread([r["test_accuracy"] for r in mine], "test"),
                            "val_mean": statistics.mean(r["val_accuracy"] for r in mine),
                            "train_seconds_mean": statistics.mean(r["train_seconds"] for r in mine),
                            "train_cpu_seconds_mean": statistics.mean(r["train_cpu_seconds"] for r in mine)})
        for arm in arms[1:]:
            gains = [f["test_accuracy"] - s["test_accuracy"] for f, s in zip(by_arm[arm], by_arm["scratch"])]
            summary.append({"budget": budget, "arm": f"{arm} minus scratch", **_spread(gains, "test")})
    return summary


def _spread(values: list[float], what: str) -> dict[str, float]:
    return {f"{what}_mean": statistics.mean(values), f"{what}_sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def plot(runs: list[dict], unfreeze_epoch: int, out: Path) -> None:
    """Validation accuracy per epoch, one panel per budget (each seed thin, the mean thick), and the learning
    rate in force; the unfreeze epoch is a dashed line in every panel."""
    # lazy: podium loads TensorFlow; --help and building the competitions need none of it
    import numpy as np

    from podium.figures import new_figure, save_png

    budgets = list(dict.fromkeys(r["budget"] for r in runs))
    figure = new_figure((5.0 * (len(budgets) + 1), 4.2), dpi=100, layout="constrained")
    axes = figure.subplots(1, len(budgets) + 1, squeeze=False)[0]
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    colours = dict(zip(arms, ("tab:grey", "tab:blue", "tab:orange", "tab:green")))
    for ax, budget in zip(axes, budgets):
        for arm, colour in colours.items():
            mine = [r for r in runs if r["budget"] == budget and r["arm"] == arm]
            curves = np.array([r["history"]["val_accuracy"] for r in mine])
            epochs = np.arange(1, curves.shape[1] + 1)
            for curve in curves:
                ax.plot(epochs, curve, color=colour, alpha=0.3, linewidth=0.8)
            ax.plot(epochs, curves.mean(axis=0), color=colour, linewidth=2, label=f"{arm}, mean of {len(curves)} seeds")
            if budget == budgets[0]:
                axes[-1].plot(epochs, mine[0]["history"]["learning_rate"], color=colour, linewidth=1.5, label=arm)
        ax.set_title(f"{budget} labels a class: validation accuracy ({mine[0]['n_val']} images)")
    for ax in axes:
        ax.axvline(unfreeze_epoch + 0.5, color="tab:red", linestyle="--", linewidth=1,
                   label="backbone unfrozen, lr x unfreeze_lr_factor")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left" if ax is axes[-1] else "lower right")
    axes[-1].set_title("learning rate in force (end of epoch)")
    axes[-1].set_yscale("log")
    figure.suptitle("tiny_cnn on CIFAR-10 dog/frog/horse/ship/truck: fine-tuned from the other five classes vs "
                    "from scratch")
    save_png(figure, out)


def markdown(result: dict) -> str:
    pre, design = result["pretrain"], result["design"]
    lines = [
        "# Transfer learning on CIFAR-10 without ImageNet, 2 CPU cores", "",
        "`python benchmarks/transfer_cifar10.py <CIFAR-10 package folder>`. Pretraining set A: airplane, automobile,",
        f"bird, cat, deer ({pre['n_train'] + pre['n_val']:,} images). Target set B: dog, frog, horse, ship, truck, "
        f"{design['b_labelled_per_class']} labelled images a class",
        f"split once (the same split for every seed) into {' or '.join(map(str, design['budgets']))} train images a "
        f"class and the rest for validation, scored on {design['b_test_per_class']:,} more a class "
        f"({5 * design['b_test_per_class']:,}) that podium predicts without their labels.",
        "Backbone: tiny_cnn at 32 px. Configs: `benchmarks/transfer/pretrain-a.yaml`,",
        "`benchmarks/transfer/finetune-b.yaml`; specs `benchmarks/transfer/cifar10-transfer-{a,b}.yaml`.", "",
        f"Pretraining on A: run `{pre['run']}`, {pre['epochs']} epochs on {pre['n_train']:,} images, validation",
        f"accuracy {pre['val_accuracy']:.4f} on {pre['n_val']:,}; `podium train` {pre['train_seconds']:.0f} s wall, "
        f"{pre['train_cpu_seconds']:.0f} s CPU.", "",
        "Arms on B, the same epochs, schedule, augmentation and split: `scratch` (finetune-b.yaml as written);",
        "`fine-tuned, lr x F`: `weights=<A's best.keras> freeze_backbone=true unfreeze_epoch=10",
        "unfreeze_lr_factor=F`: the head alone for 10 epochs, then the whole net at lr x F, BatchNorm in inference",
        "mode throughout (F = 0.1 is podium's default; F = 1 is the ablation of the lowered rate).", "",
        "Wall seconds include each command's start-up and any wait for the shared cores; CPU seconds (user +",
        "system, both cores together) are what the command itself cost.", "",
        f"| budget | arm | seed | run | test accuracy ({5 * design['b_test_per_class']:,}) | validation (best epoch) | "
        "train s wall / CPU | "
        "predict s wall / CPU |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(f"| {r['budget']} | {r['arm']} | {r['seed']} | `{r['run']}` | {r['test_accuracy']:.4f} | "
                     f"{r['val_accuracy']:.4f} ({r['best_epoch']}) | {r['train_seconds']:.0f} / "
                     f"{r['train_cpu_seconds']:.0f} | {r['predict_seconds']:.0f} / {r['predict_cpu_seconds']:.0f} |")
    lines += ["", "| budget | arm | test accuracy, mean ± sd over seeds | validation, mean | train s wall / CPU, mean |",
              "|---:|---|---:|---:|---:|"]
    for s in result["summary"]:
        if "val_mean" in s:
            lines.append(f"| {s['budget']} | {s['arm']} | {s['test_mean']:.4f} ± {s['test_sd']:.4f} | "
                         f"{s['val_mean']:.4f} | {s['train_seconds_mean']:.0f} / {s['train_cpu_seconds_mean']:.0f} |")
        else:  # the difference, seed by seed
            lines.append(f"| {s['budget']} | **{s['arm']}** | **{s['test_mean']:+.4f} ± {s['test_sd']:.4f}** | | |")
    lines += ["", "![validation accuracy per epoch, every arm](transfer-cifar10.png)", "",
              "Commands, in order (wall times include each command's start-up):", "", "```"]
    for c in result["commands"]:
        note = ", recorded by an earlier call and reused" if c["reused"] else ""
        lines.append(f"{c['command']}  # {c['wall_seconds']:.0f} s wall, {c['cpu_seconds']:.0f} s CPU{note}")
    lines += ["```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
