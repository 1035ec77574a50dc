"""`make eda`: one look at the data before any training: how many images per class (a class with 3 images
next to one with 1,000 decides the loss and the metric), what sizes and shapes they come in, their colour
statistics, which files are broken or odd, how many duplicates there are, and what each class looks like.

Writes PNG plots, summary.json (the numbers, for machines and tests) and summary.md (for people) into
data/<slug>/eda/. Library code: returns an EdaReport or raises PodiumError; cli/data.py prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.data.duplicates import dups_settings, duplicates_dir
from podium.data.gallery import class_grid, figure
from podium.figures import plot_class_distribution, save_png
from podium.data.images import ImageDecodeError, decode_image
from podium.data.source_files import require_files
from podium.errors import PodiumError
from podium.io import write_csv, write_json, write_text

STATS_SAMPLE = 2000  # images decoded for channel statistics: enough for 3 significant digits
PER_CLASS = 8  # sample images per class in the grid
SMALL_SIDE = 16  # pixels: smaller than this is too small to classify reliably
EXTREME_ASPECT = 4.0  # width/height beyond 4:1 (or 1:4) gets squashed hard by a square resize
SET_SHARE = 0.5  # a trait of at least this share of the readable images is the set's, said once, not per file


@dataclass
class EdaReport:
    out_dir: Path
    files: list[Path]
    summary: dict


def class_counts(index: pd.DataFrame) -> pd.Series:
    """Readable train images per class, largest first (ties by name)."""
    train = index[(index["split"] == "train") & index["ok"]]
    counts = train["label"].astype(str).value_counts()
    return counts.sort_index().sort_values(ascending=False, kind="stable")


def class_summary(counts: pd.Series) -> dict:
    return {"classes": len(counts), "images": int(counts.sum()), "per_class": {k: int(v) for k, v in counts.items()},
            "largest": int(counts.max()) if len(counts) else 0, "smallest": int(counts.min()) if len(counts) else 0,
            "imbalance_ratio": float(counts.max() / counts.min()) if len(counts) and counts.min() else None}


def size_summary(index: pd.DataFrame) -> dict:
    """Width, height and aspect (width / height) of readable images, per split."""
    out = {}
    for split, rows in index[index["ok"]].groupby("split", sort=True):
        aspect = rows["width"] / rows["height"]
        sizes = (rows["width"].astype(str) + "x" + rows["height"].astype(str)).value_counts()
        out[split] = {"images": len(rows), "distinct_sizes": len(sizes),
                      "most_common_size": sizes.index[0], "most_common_share": float(sizes.iloc[0] / len(rows)),
                      "width": _quantiles(rows["width"]), "height": _quantiles(rows["height"]),
                      "aspect": _quantiles(aspect)}
    return out


def channel_statistics(index: pd.DataFrame, data_root: Path, sample: int = STATS_SAMPLE, seed: int = 0
                       ) -> tuple[dict, list[str]]:
    """Mean and std per RGB channel (0..255, over all pixels of up to `sample` train images), and the
    ids of sampled images that are gray (three equal channels) in a colour dataset."""
    rows = index[(index["split"] == "train") & index["ok"]].sort_values("id", kind="stable")
    if len(rows) > sample:
        rows = rows.sample(n=sample, random_state=seed).sort_values("id", kind="stable")
    total, squares, pixels, gray = np.zeros(3), np.zeros(3), 0, []
    for row in rows.itertuples():
        try:
            image = decode_image(Path(data_root) / row.path)
        except ImageDecodeError:
            continue
        flat = image.reshape(-1, 3).astype(np.float64)
        total += flat.sum(axis=0)
        squares += (flat ** 2).sum(axis=0)
        pixels += len(flat)
        if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]):
            gray.append(str(row.id))
    if not pixels:
        return {"images": 0, "mean": [None] * 3, "std": [None] * 3}, []
    mean = total / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean ** 2, 0))
    return {"images": len(rows), "mean": [round(float(v), 3) for v in mean],
            "std": [round(float(v), 3) for v in std]}, gray


def _tiny(readable: pd.DataFrame) -> pd.Series:
    return np.minimum(readable["width"], readable["height"]) < SMALL_SIDE


def _stretched(readable: pd.DataFrame) -> pd.Series:
    aspect = readable["width"] / readable["height"]
    return (aspect > EXTREME_ASPECT) | (aspect < 1 / EXTREME_ASPECT)


def set_traits(index: pd.DataFrame) -> tuple[list[str], set[str]]:
    """Sentences for what most of the set shares (all 8x8, mostly elongated) and the names of those traits:
    a property of the whole set is one line, not thousands of "odd" files that hide the truly odd ones."""
    readable = index[index["ok"]]
    total = len(readable)
    notes, traits = [], set()
    if not total:
        return notes, traits
    every = "all" + (f" {total:,} readable" if len(readable) < len(index) else f" {total:,}") + " images"
    for trait, mask, meaning in (
            ("tiny", _tiny(readable), f"under {SMALL_SIDE} px on a side: they are upscaled to the config's "
                                      f"image_size, so a small image_size (e.g. 32) is the cheap choice"),
            ("extreme aspect", _stretched(readable), f"beyond {EXTREME_ASPECT:g}:1: a square resize squashes them")):
        count = int(mask.sum())
        if count < SET_SHARE * total:
            continue
        traits.add(trait)
        sizes = (readable.loc[mask, "width"].astype(str) + "x" + readable.loc[mask, "height"].astype(str))
        shape = sizes.iloc[0] if sizes.nunique() == 1 else f"{sizes.nunique()} sizes, most often {sizes.mode()[0]}"
        who = every if count == total else f"{count:,} of {total:,} readable images"
        notes.append(f"{who} are {shape} ({trait}: {meaning})")
    return notes, traits


def odd_files(index: pd.DataFrame, gray_ids: list[str], color_dataset: bool,
              set_wide: set[str] = frozenset()) -> pd.DataFrame:
    """Files worth a look before training: unreadable (always, one row each), tiny, extremely elongated,
    gray among colour; a trait in `set_wide` (see set_traits) is the set's and is not listed per file."""
    problems = []
    for row in index[~index["ok"]].itertuples():
        problems.append((row.split, row.id, row.path, f"unreadable: {row.error}"))
    readable = index[index["ok"]]
    if "tiny" not in set_wide:
        small = readable[_tiny(readable)]
        problems += [(r.split, r.id, r.path, f"tiny: {r.width}x{r.height}") for r in small.itertuples()]
    if "extreme aspect" not in set_wide:
        stretched = readable[_stretched(readable)]
        problems += [(r.split, r.id, r.path, f"extreme aspect: {r.width}x{r.height}")
                     for r in stretched.itertuples()]
    if color_dataset:
        gray = readable[(readable["split"] == "train") & readable["id"].astype(str).isin(set(gray_ids))]
        problems += [(r.split, r.id, r.path, "gray image in a colour dataset") for r in gray.itertuples()]
    return pd.DataFrame(problems, columns=["split", "id", "path", "problem"])


def duplicate_summary(index: pd.DataFrame, data_root: Path) -> dict:
    """Duplicate groups as the index's group column has them (byte copies always; near-duplicates once
    `make dups` has run), with the settings used."""
    sizes = index["group"].value_counts()
    multi = sizes[sizes > 1]
    members = index[index["group"].isin(multi.index)]
    cross = members.groupby("group")["split"].nunique()
    ran = (duplicates_dir(data_root) / "summary.json").is_file()
    threshold, mirrored = dups_settings(data_root)
    return {"near_duplicate_search": ran, "threshold": threshold if ran else None, "mirrored": mirrored if ran else None,
            "groups": len(multi), "images_in_groups": int(multi.sum()), "largest_group": int(sizes.max()) if len(sizes) else 0,
            "train_test_groups": int((cross > 1).sum())}


def make_eda(index: pd.DataFrame, data_root: Path, out_dir: Path | None = None, sample: int = STATS_SAMPLE,
             per_class: int = PER_CLASS, seed: int = 0) -> EdaReport:
    """The whole report into `out_dir` (default data/<slug>/eda)."""
    data_root = Path(data_root)
    out_dir = Path(out_dir) if out_dir else data_root / "eda"
    counts = class_counts(index)
    if counts.empty:
        raise PodiumError("No readable labeled images to report on.", expected="train rows with ok=True in the index",
                          received=f"{len(index)} rows, none usable", fix="check `make data` output for errors")
    require_files(index, data_root)
    channels, gray = channel_statistics(index, data_root, sample, seed)
    color_dataset = len(gray) < SET_SHARE * max(channels["images"], 1)
    notes, set_wide = set_traits(index)
    if gray and not color_dataset:
        notes.append(f"{len(gray):,} of {channels['images']:,} sampled train images are gray (three equal channels): "
                     f"a gray data set")
    odd = odd_files(index, gray, color_dataset, set_wide)
    summary = {"classes": class_summary(counts), "sizes": size_summary(index), "channels": channels,
               "gray_images_sampled": len(gray), "set_notes": notes, "odd_files": len(odd),
               "unreadable": int((~index["ok"]).sum()), "duplicates": duplicate_summary(index, data_root)}
    files = [plot_class_distribution(counts.to_dict(), out_dir / "class_distribution.png",
                                            title="train images per class"),
             _plot_sizes(index, out_dir / "sizes.png"),
             _plot_channels(channels, out_dir / "channels.png"),
             _sample_grid(index, data_root, counts.index.tolist(), per_class, seed, out_dir / "samples.png"),
             write_csv(out_dir / "odd_files.csv", odd),
             write_json(out_dir / "summary.json", summary)]
    files.append(write_text(out_dir / "summary.md", summary_markdown(summary, odd)))
    return EdaReport(out_dir=out_dir, files=files, summary=summary)


def summary_markdown(summary: dict, odd: pd.DataFrame) -> str:
    classes, channels, dups = summary["classes"], summary["channels"], summary["duplicates"]
    ratio = classes["imbalance_ratio"]
    lines = ["# Data report", "",
             f"{classes['images']} readable train images in {classes['classes']} classes; "
             f"largest class {classes['largest']}, smallest {classes['smallest']}, imbalance ratio "
             f"{ratio:.2f}" + (" (consider class weights or oversampling)" if ratio and ratio >= 3 else ""), "",
             "## Images per class", "", "| class | images |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in classes["per_class"].items()]
    lines += ["", "## Sizes", "", "| split | images | distinct sizes | most common | width min/median/max | "
              "height min/median/max | aspect min/median/max |", "|---|---:|---:|---|---|---|---|"]
    for split, s in summary["sizes"].items():
        lines.append(f"| {split} | {s['images']} | {s['distinct_sizes']} | {s['most_common_size']} "
                     f"({s['most_common_share']:.0%}) | {_range(s['width'])} | {_range(s['height'])} | "
                     f"{_range(s['aspect'], 2)} |")
    lines += ["", "## Channels (0..255, R G B)", "",
              f"mean {channels['mean']}, std {channels['std']}, over all pixels of {channels['images']} train images"
              + (f"; {summary['gray_images_sampled']} of them gray" if summary["gray_images_sampled"] else ""), "",
              "## Duplicates", ""]
    if dups["near_duplicate_search"]:
        lines.append(f"near-duplicate search at threshold {dups['threshold']} (mirrored: {dups['mirrored']}): ")
    else:
        lines.append("byte-identical copies only: run `make dups` to find near-duplicates. ")
    lines[-1] += (f"{dups['groups']} groups holding {dups['images_in_groups']} images, largest {dups['largest_group']}, "
                  f"{dups['train_test_groups']} spanning train and test.")
    if summary.get("set_notes"):
        lines += ["", "## The whole set", ""] + [f"- {note}" for note in summary["set_notes"]]
    lines += ["", f"## Unreadable or odd files: {len(odd)}", ""]
    if len(odd):
        lines += ["| split | id | problem |", "|---|---|---|"]
        lines += [f"| {r.split} | {r.id} | {r.problem} |" for r in odd.head(50).itertuples()]
        if len(odd) > 50:
            lines.append(f"\n... and {len(odd) - 50} more in odd_files.csv")
    lines += ["", "Plots: class_distribution.png, sizes.png, channels.png, samples.png"]
    return "\n".join(lines) + "\n"


def _quantiles(values: pd.Series) -> dict:
    return {"min": float(values.min()), "median": float(values.median()), "max": float(values.max())}


def _range(q: dict, digits: int = 0) -> str:
    return " / ".join(f"{q[k]:.{digits}f}" for k in ("min", "median", "max"))


def _plot_sizes(index: pd.DataFrame, out_path: Path) -> Path:
    readable = index[index["ok"]]
    fig = figure((11.0, 3.8))
    sizes_ax, aspect_ax = fig.subplots(1, 2)
    for split, rows in readable.groupby("split", sort=True):
        sizes_ax.scatter(rows["width"], rows["height"], s=6, alpha=0.4, label=f"{split} ({len(rows)})")
        aspect_ax.hist(rows["width"] / rows["height"], bins=40, alpha=0.6, label=split)
    sizes_ax.set_xlabel("width (px)")
    sizes_ax.set_ylabel("height (px)")
    sizes_ax.set_title("image sizes")
    sizes_ax.legend(fontsize=8)
    aspect_ax.set_xlabel("aspect ratio (width / height)")
    aspect_ax.set_ylabel("images")
    aspect_ax.set_title("aspect ratios")
    aspect_ax.legend(fontsize=8)
    return save_png(fig, out_path)


def _plot_channels(channels: dict, out_path: Path) -> Path:
    fig = figure((5.0, 3.5))
    ax = fig.subplots()
    mean = [v or 0 for v in channels["mean"]]
    std = [v or 0 for v in channels["std"]]
    ax.bar(["R", "G", "B"], mean, yerr=std, color=["tab:red", "tab:green", "tab:blue"], capsize=6, alpha=0.8)
    for k, (m, s) in enumerate(zip(mean, std)):
        ax.text(k, m + s + 4, f"{m:.1f}\n±{s:.1f}", ha="center", fontsize=8)
    ax.set_ylim(0, 300)
    ax.set_ylabel("pixel value (0..255)")
    ax.set_title(f"channel mean ± std ({channels['images']} train images)")
    return save_png(fig, out_path)


def _sample_grid(index: pd.DataFrame, data_root: Path, classes: list[str], per_class: int, seed: int,
                 out_path: Path) -> Path:
    """A deterministic sample of each class (and of the test set, to compare): look before training."""
    readable = index[index["ok"]]
    samples = {}
    for name in classes:
        rows = readable[(readable["split"] == "train") & (readable["label"].astype(str) == name)]
        samples[f"{name} ({len(rows)})"] = _load_sample(rows, data_root, per_class, seed)
    test = readable[readable["split"] == "test"]
    if len(test):
        samples[f"test ({len(test)})"] = _load_sample(test, data_root, per_class, seed)
    return class_grid(samples, out_path, f"{per_class} random images per class")


def _load_sample(rows: pd.DataFrame, data_root: Path, count: int, seed: int) -> list[np.ndarray]:
    chosen = rows.sort_values("id", kind="stable")
    chosen = chosen.sample(n=min(count, len(chosen)), random_state=seed) if len(chosen) else chosen
    images = []
    for row in chosen.itertuples():
        try:
            images.append(decode_image(Path(data_root) / row.path))
        except ImageDecodeError:
            continue
    return images
