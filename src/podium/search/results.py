"""The search's answer: one row per configuration with mean ± std over seeds, ranked, and each row
marked against the best as distinguishable or not (the reviewer: a 2-point gap from one run is noise).

Rule: a configuration is "not distinguishable" from the best when the gap between their means is no
larger than the seed spread, taken as the larger of the two seed standard deviations (ddof=1). It is
deliberately simple and conservative; with 2 seeds the std itself is rough, so more seeds sharpen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from podium.search import study as search
from podium.errors import PodiumError
from podium.figures import new_figure, save_png
from podium.io import write_csv, write_text
from podium.search.study import optuna
from podium.config import load_config

BEST, SAME, WORSE, ONE_SEED = "best", "not distinguishable", "worse", "unknown (1 seed)"
STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}
VALIDATION_KEYS = ("val_split", "n_folds", "folds")  # the search's policy, not the final training's
DPI = 110


@dataclass
class ResultsSummary:
    table: pd.DataFrame
    markdown: str
    conclusions: list[str]
    csv: Path
    md: Path
    plots: list[Path] = field(default_factory=list)
    best_config: Path | None = None


def write_results(space: search.SearchSpace, storage: str | None = None, out_dir: Path | None = None
                  ) -> ResultsSummary:
    """make results: the ranked table (csv, md), the plots and the best configuration as a YAML."""
    study = search.open_study(space, storage, create=False)
    out_dir = Path(out_dir or space.study_dir)
    metric = space.metric
    table = rank(results_table(study, space, metric.direction), metric.direction)
    table["metric"] = metric.label  # every row is scored by it (one metric per study): what the HTML report shows
    conclusions = conclude(table, space)
    markdown = to_markdown(table, space, conclusions)
    summary = ResultsSummary(table=table, markdown=markdown, conclusions=conclusions,
                             csv=write_csv(out_dir / "results.csv", table), md=write_text(out_dir / "results.md",
                                                                                          markdown + "\n"))
    complete = table[table["state"] == "COMPLETE"]
    if not complete.empty:
        names = [p.name for p in space.params]
        summary.plots = [plot_metric_per_param(complete, space, out_dir / "plots" / "metric_per_param.png"),
                         plot_parallel_coordinates(complete, names, out_dir / "plots" / "parallel_coordinates.png"),
                         plot_lr_curves(complete, out_dir / "plots" / "lr_curves.png",
                                        space.base_config().metric_logged, metric.label)]
        summary.best_config = export_best_config(space, study, out_dir / "best.yaml")
    return summary


# ------------------------------------------------------------------------------------------ table


def results_table(study: optuna.Study, space: search.SearchSpace, direction: str = "max") -> pd.DataFrame:
    """One row per trial (queued ones left out), straight from the study's records; tta_gain is in the
    metric's direction (a lower log loss is a gain)."""
    sign = -1.0 if direction == "min" else 1.0
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.WAITING:
            continue
        seeds = trial.user_attrs.get(search.ATTR_SEEDS, [])
        scores = np.array([s["val_score"] for s in seeds], dtype=float)
        tta = np.array([s["val_score_tta"] for s in seeds], dtype=float)
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
        row.update({p.name: trial.params.get(p.name) for p in space.params})
        row.update({
            "seeds": len(seeds),
            "val_mean": float(scores.mean()) if len(scores) else math.nan,
            "val_std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
            "tta_gain": sign * float((tta - scores).mean()) if len(scores) else math.nan,
            "best_epoch": _mean(seeds, "best_epoch"),
            "epochs_run": _mean(seeds, "epochs_run"),
            "s_per_epoch": _mean(seeds, "seconds_per_epoch"),
            "aug_img_per_s": _number(trial.user_attrs.get(search.ATTR_AUG_COST)),
            "seed_scores": " ".join(f"{v:.4f}" for v in scores),
            "note": _note(trial),
            "run_dir": seeds[0]["run_dir"] if seeds else "",
        })
        rows.append(row)
    columns = ["trial", "state", *[p.name for p in space.params], "seeds", "val_mean", "val_std", "tta_gain",
               "best_epoch", "epochs_run", "s_per_epoch", "aug_img_per_s", "seed_scores", "note", "run_dir"]
    return pd.DataFrame(rows, columns=columns)


def rank(table: pd.DataFrame, direction: str = "max") -> pd.DataFrame:
    """Complete trials by mean, best first in the metric's direction, each marked against the best; then
    pruned, failed, the rest."""
    table = table.copy()
    table["_order"] = table["state"].map(STATE_ORDER).fillna(9)
    table = table.sort_values(["_order", "val_mean", "trial"], ascending=[True, direction == "min", True],
                              kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    table.insert(0, "rank", [i + 1 if s == "COMPLETE" else None for i, s in enumerate(table["state"])])
    table["rank"] = table["rank"].astype("Int64")
    table.insert(table.columns.get_loc("val_std") + 1, "verdict", [verdict(table, i) for i in range(len(table))])
    return table


def verdict(table: pd.DataFrame, position: int) -> str:
    """Against the best (row 0): is the gap larger than the seed spread of either of them?"""
    row = table.iloc[position]
    if row["state"] != "COMPLETE":
        return ""
    if position == 0:
        return BEST
    best = table.iloc[0]
    spread = np.nanmax([best["val_std"], row["val_std"]]) if not (
        math.isnan(best["val_std"]) and math.isnan(row["val_std"])) else math.nan
    if math.isnan(spread) or min(best["seeds"], row["seeds"]) < 2:
        return ONE_SEED
    return SAME if abs(best["val_mean"] - row["val_mean"]) <= spread else WORSE  # ranked: best first either way


def conclude(table: pd.DataFrame, space: search.SearchSpace) -> list[str]:
    """Plain sentences: the best, what ties with it, what is really worse, what was pruned or failed."""
    complete = table[table["state"] == "COMPLETE"]
    if complete.empty:
        return ["no configuration finished yet"]
    best = complete.iloc[0]
    lines = [f"best: trial {best['trial']} ({_params_text(best, space)}) {best['val_mean']:.4f} ± "
             f"{_fmt(best['val_std'])} over {best['seeds']} seed(s)"]
    same = complete[complete["verdict"] == SAME]["trial"].tolist()
    worse = complete[complete["verdict"] == WORSE]["trial"].tolist()
    if same:
        lines.append(f"not distinguishable from the best (gap <= seed spread): trials {_list(same)}")
    if worse:
        lines.append(f"distinguishably worse: trials {_list(worse)}")
    unknown = complete[complete["verdict"] == ONE_SEED]["trial"].tolist()
    if unknown:
        lines.append(f"no seed spread to compare with (1 seed; use seeds: 2 or more): trials {_list(unknown)}")
    for state, word in (("PRUNED", "pruned"), ("FAIL", "failed")):
        numbers = table[table["state"] == state]["trial"].tolist()
        if numbers:
            lines.append(f"{word}: trials {_list(numbers)}")
    return lines


def to_markdown(table: pd.DataFrame, space: search.SearchSpace, conclusions: list[str]) -> str:
    names = [p.name for p in space.params]
    metric = space.metric
    header = ["rank", "trial", "state", *names, f"val {metric.label} (mean ± std)", "verdict", "TTA gain",
              "best epoch", "s/epoch", "aug img/s", "seeds", "note"]
    lines = [f"# Search `{space.name}`", "",
             f"Scored by {metric.label} ({'lower' if metric.direction == 'min' else 'higher'} is better), every "
             f"trial alike; {len(space.seeds)} seed(s) per configuration; differences to the best no larger than "
             "the seed "
             "spread (the larger of the two stds) are marked *not distinguishable*.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [_text(row["rank"]), str(row["trial"]), row["state"].lower(), *[_text(row[n]) for n in names],
                 f"{_fmt(row['val_mean'])} ± {_fmt(row['val_std'])}" if row["seeds"] else "",
                 row["verdict"], _fmt(row["tta_gain"], signed=True), _fmt(row["best_epoch"], 1),
                 _fmt(row["s_per_epoch"], 2), _fmt(row["aug_img_per_s"], 0), row["seed_scores"],
                 str(row["note"]).replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", *[f"- {line}" for line in conclusions]])


# -------------------------------------------------------------------------------------- best config


def export_best_config(space: search.SearchSpace, study: optuna.Study, path: Path) -> Path:
    """The best trial's resolved config as an experiment YAML, with the base's own validation policy
    (full data or k folds), seed and runs folder: ready for `make train EXP=<path>`."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise PodiumError(f"Study '{space.name}' has no complete trial to export.", expected="one complete trial",
                          received="none", fix="run the search (make search) until a trial completes")
    best = study.best_trial  # in the study's direction, the metric's
    base = load_config(space.base)
    values = search.trial_values(space, best.params)
    cfg = search.resolve_config(space, values, seed=base.seed)
    resolved = cfg.to_dict()
    resolved.update({key: getattr(base, key) for key in (*VALIDATION_KEYS, "runs_dir", "seed")})
    resolved["name"] = f"{base.name}-{space.name}-best"
    load_config(None, resolved)  # the file we write must load
    scores = [s["val_score"] for s in best.user_attrs.get(search.ATTR_SEEDS, [])]
    header = (f"# Best configuration of search '{space.name}': trial {best.number}, val {space.metric.label} "
              f"{np.mean(scores):.4f} over seeds {[s['seed'] for s in best.user_attrs[search.ATTR_SEEDS]]} on a "
              f"{cfg.val_split:.0%} holdout.\n# Validation policy, seed and runs_dir are the base config's again: "
              f"train it with `make train EXP={path}`.\n")
    return write_text(path, header + yaml.safe_dump(resolved, sort_keys=False))


# ------------------------------------------------------------------------------------------- plots


def plot_metric_per_param(complete: pd.DataFrame, space: search.SearchSpace, out_path: Path) -> Path:
    """One panel per parameter: each seed as a dot, each configuration's mean ± std as a bar."""
    params = space.params
    figure, axes = _figure((4.0 * len(params), 3.4), 1, len(params))
    for axis, param in zip(axes, params):
        labels = list(param.labels) if param.kind == "categorical" else None
        for _, row in complete.iterrows():
            x = labels.index(row[param.name]) if labels else float(row[param.name])
            seeds = [float(v) for v in row["seed_scores"].split()]
            axis.scatter([x] * len(seeds), seeds, s=12, color="0.6", zorder=2)
            axis.errorbar([x], [row["val_mean"]], yerr=[0 if math.isnan(row["val_std"]) else row["val_std"]],
                          fmt="o", color="C0", capsize=4, zorder=3)
        if labels:
            axis.set_xticks(range(len(labels)), [str(v) for v in labels], rotation=20, fontsize=8)
            axis.set_xlim(-0.5, len(labels) - 0.5)
        elif param.log:
            axis.set_xscale("log")
        axis.set_xlabel(param.name)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"val {space.metric.label} (seeds, mean ± std)")
    return _save(figure, out_path)


def plot_parallel_coordinates(complete: pd.DataFrame, names: list[str], out_path: Path) -> Path:
    """Each configuration a line across the parameter axes to its score, coloured by the score."""
    columns = [*names, "val_mean"]
    figure, (axis,) = _figure((1.8 * len(columns) + 1.5, 4.0), 1, 1)
    scaled, ticks = {}, {}
    for name in columns:
        values = complete[name]
        if pd.api.types.is_numeric_dtype(values) and name != "val_mean" and values.nunique() > 1 \
                and (values > 0).all() and values.max() / values.min() > 50:
            numbers = np.log10(values.astype(float))
        elif pd.api.types.is_numeric_dtype(values):
            numbers = values.astype(float)
        else:
            levels = sorted(values.astype(str).unique())
            numbers = values.astype(str).map({v: i for i, v in enumerate(levels)}).astype(float)
            ticks[name] = levels
        low, high = float(numbers.min()), float(numbers.max())
        scaled[name] = (numbers - low) / (high - low) if high > low else numbers * 0 + 0.5
        if name not in ticks:
            ticks[name] = [f"{values.min():.3g}", f"{values.max():.3g}"]
    colour = scaled["val_mean"].to_numpy()
    cmap = _colormap()
    for row in range(len(complete)):
        axis.plot(range(len(columns)), [scaled[c].iloc[row] for c in columns], color=cmap(colour[row]), alpha=0.8)
    for x, name in enumerate(columns):
        axis.axvline(x, color="0.3", lw=0.8)
        labels = ticks[name]
        spots = np.linspace(0, 1, len(labels)) if len(labels) > 1 else [0.5]
        for spot, label in zip(spots, labels):  # categorical: every level at its height; numeric: the ends
            axis.text(x + 0.03, spot, str(label), ha="left", va="center", fontsize=7,
                      bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    axis.set_xticks(range(len(columns)), columns)
    axis.set_yticks([])
    axis.set_ylim(-0.08, 1.08)
    return _save(figure, out_path)


def plot_lr_curves(complete: pd.DataFrame, out_path: Path, logged: str = "val_accuracy",
                   name: str = "accuracy") -> Path:
    """The learning rate in force and the validation metric per epoch of each configuration's first seed."""
    figure, (lr_axis, val_axis) = _figure((11, 3.8), 1, 2)
    for _, row in complete.iterrows():
        found = sorted(Path(row["run_dir"]).glob("fold-*/history.csv")) if row["run_dir"] else []
        if not found:  # trained on another machine of a shared study
            continue
        history = pd.read_csv(found[0])
        epochs = history["epoch"] + 1
        label = f"trial {row['trial']}"
        if "learning_rate" in history:
            lr_axis.plot(epochs, history["learning_rate"], marker=".", label=label)
        if logged in history:
            val_axis.plot(epochs, history[logged], marker=".", label=label)
    lr_axis.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="learning rate")
    val_axis.set(xlabel="epoch", ylabel=f"val {name}", title=f"validation {name} (first seed)")
    for axis in (lr_axis, val_axis):
        axis.grid(alpha=0.3)
    val_axis.legend(fontsize=7, ncol=2)
    return _save(figure, out_path)


# ----------------------------------------------------------------------------------------- helpers


def _figure(size, rows: int, cols: int):
    figure = new_figure(size, DPI)
    axes = figure.subplots(rows, cols, squeeze=False).ravel().tolist()
    return figure, axes


def _save(figure: Figure, out_path: Path) -> Path:
    figure.tight_layout()
    return save_png(figure, out_path)


def _colormap():
    from matplotlib import colormaps

    return colormaps["viridis"]


def _mean(seeds: list[dict], key: str) -> float:
    return float(np.mean([s[key] for s in seeds])) if seeds else math.nan


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _note(trial: optuna.trial.FrozenTrial) -> str:
    if trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        return f"pruned after epoch {step + 1} (val {trial.intermediate_values[step]:.4f})"
    if trial.state == optuna.trial.TrialState.FAIL:
        if trial.user_attrs.get(search.ATTR_INTERRUPTED) or search.ATTR_ERROR not in trial.user_attrs:
            return "interrupted; queued again on the next search"
        return str(trial.user_attrs[search.ATTR_ERROR])
    return ""


def _params_text(row: pd.Series, space: search.SearchSpace) -> str:
    return ", ".join(f"{p.name}={row[p.name]}" for p in space.params)


def _list(numbers: list) -> str:
    return ", ".join(str(n) for n in numbers)


def _fmt(value: Any, digits: int = 4, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
