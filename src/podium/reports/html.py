"""`make report`: one static HTML page over everything in runs/ and submissions/.

runs/report/index.html with its images beside it (copied, so the folder opens from disk, can be zipped
and mailed; no server, no script, no external CSS or fonts). It is rebuilt from the files each time
and never edited by hand: a new folder is written, then swapped in. Every string that goes into the
page is HTML-escaped. Every figure is a PNG (the runs' own plots, plus the CV vs public chart).

Sections: runs (config differences from the most common config, CV +/- spread, TTA gain, wall time),
blends, CV vs public score of the logged submissions with Pearson and Spearman correlation, searches
(results tables and plots), then one section per run (curves, confusion matrix, worst classes).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.config import PLUMBING_KEYS
from podium.errors import PodiumError
from podium.io import write_text
from podium.paths import check_folder, is_made, mark_made, remove_made, remove_stale
from podium.reports.run_report import plot_cv_vs_public, summary_lines

WORST_SHOWN = 5  # classes listed per run, lowest recall first
MIN_CORRELATION_POINTS = 3  # below this a correlation says nothing
NOT_COMPARED = {*PLUMBING_KEYS, "name"}  # differ between every run by design

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 24px; } h2 { font-size: 20px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 16px; margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0 16px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px; } .figs img { max-width: 48%; }
.note { color: #555; font-size: 13px; } .warn { color: #a15c00; font-weight: bold; }
code { background: #f4f4f4; padding: 0 3px; }
"""


@dataclass
class BuiltReport:
    page: Path
    n_runs: int
    n_blends: int
    n_searches: int
    n_submissions: int  # logged submissions with both a CV and a public score
    n_files: int
    bytes: int
    seconds: float


def e(value) -> str:
    """Every string the page shows goes through here."""
    return html.escape(str(value), quote=True)


# ------------------------------------------------------------------------------------ what is there
@dataclass
class RunInfo:
    run_id: str
    folder: Path
    metrics: dict
    config: dict

    @property
    def is_blend(self) -> bool:
        return self.metrics.get("kind") == "blend"


def find_runs(runs_dir: Path, notes: list[str] | None = None) -> list[RunInfo]:
    """Folders of runs_dir with a metrics.json (trained runs and blends), oldest first. A run whose
    metrics.json or config.yaml cannot be read or has the wrong shape is left out, with a line in `notes`."""
    import yaml

    found = []
    for folder in sorted(p for p in Path(runs_dir).iterdir() if p.is_dir()) if Path(runs_dir).is_dir() else []:
        metrics_path, config_path = folder / "metrics.json", folder / "config.yaml"
        if folder.name in ("report",) or folder.name.startswith(("search-", ".")) or not metrics_path.is_file():
            continue
        metrics = None
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        except (OSError, ValueError, yaml.YAMLError) as exc:  # UnicodeDecodeError is a ValueError
            which = metrics_path if metrics is None else config_path
            _note(notes, which, f"cannot be read ({type(exc).__name__}: {_first_line(exc)})")
            continue
        problem = run_shape_problem(metrics, config or {})
        if problem:
            _note(notes, config_path if problem.startswith("config.yaml") else metrics_path, problem)
            continue
        found.append(RunInfo(folder.name, folder, metrics, config or {}))
    return sorted(found, key=lambda r: (metrics_time(r), r.run_id))


_NUMBERS = ("cv_mean", "cv_std", "cv_tta_mean", "cv_tta_std", "in_sample_cv_mean", "wall_seconds")
_MAPPINGS = ("weights", "run_oof_cv", "pseudo_labels", "extra")


def run_shape_problem(metrics: object, config: object) -> str:
    """What in a run's metrics.json / config.yaml is not of the shape podium writes ("" when all is)."""
    if not isinstance(metrics, dict):
        return f"metrics.json holds a {type(metrics).__name__}, not a mapping of names to values"
    if not isinstance(config, dict):
        return f"config.yaml holds a {type(config).__name__}, not a mapping of keys to values"
    for key in _NUMBERS:
        value = metrics.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metrics.json's {key} is {value!r}, not a number"
    for key in _MAPPINGS:
        if metrics.get(key) is not None and not isinstance(metrics[key], dict):
            return f"metrics.json's {key} is a {type(metrics[key]).__name__}, not a mapping"
    folds = metrics.get("folds", [])
    if not isinstance(folds, list) or not all(isinstance(f, dict) for f in folds):
        return "metrics.json's folds is not a list of per-fold records"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (metrics.get("weights") or {}).values()):
        return "metrics.json's weights are not all numbers"
    if not all(isinstance(v, dict) for v in (metrics.get("run_oof_cv") or {}).values()):
        return "metrics.json's run_oof_cv is not a mapping of runs to {mean, std}"
    for key in ("competition", "metric", "method", "kind"):
        if metrics.get(key) is not None and not isinstance(metrics[key], str):
            return f"metrics.json's {key} is {metrics[key]!r}, not text"
    return ""


def _note(notes: list[str] | None, path: Path, problem: str) -> None:
    if notes is not None:
        notes.append(f"{path}: {problem}; left out of this report (remake it, or fix the file by hand)")


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def read_table(path: Path, notes: list[str] | None) -> pd.DataFrame | None:
    """A CSV podium wrote (log.csv, a search's results.csv) as text columns; None, with a note naming the
    file, when a hand edit left it unreadable (not UTF-8, ragged rows, empty)."""
    try:
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        ragged = next((n for n, row in enumerate(rows[1:], 2) if row and len(row) != len(rows[0])), None)
        if ragged:  # pandas would quietly shift the columns into an index
            raise ValueError(f"line {ragged} has {len(rows[ragged - 1])} fields, the header {len(rows[0])}")
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (OSError, ValueError, csv.Error, pd.errors.ParserError) as exc:
        _note(notes, path, f"cannot be read as a CSV table ({type(exc).__name__}: {_first_line(exc)})")
        return None


def cv_text(mean, std, folds) -> str:
    """'0.8624 ± 0.0100' over several folds; one fold (a holdout) has no spread to show."""
    n = len(folds) if isinstance(folds, (list, tuple)) else int(folds or 0)
    return score(mean) if n <= 1 else f"{score(mean)} ± {score(std)}"


def notes_section(notes: list[str]) -> str:
    if not notes:
        return ""
    return ("<h2>Left out</h2><p class=\"warn\">These files could not be read as podium writes them:</p><ul>" +
            "".join(f"<li class=\"note\">{e(n)}</li>" for n in notes) + "</ul>")


def metrics_time(run: RunInfo) -> float:
    return (run.folder / "metrics.json").stat().st_mtime


def config_differences(configs: list[dict]) -> list[dict[str, object]]:
    """Per config, the keys whose value differs from the most common value among all of them."""
    keys = sorted({k for c in configs for k in c} - NOT_COMPARED)
    common = {}
    for key in keys:
        values = Counter(json.dumps(c.get(key), sort_keys=True, default=str) for c in configs)
        common[key] = values.most_common(1)[0][0]
    return [{k: c.get(k) for k in keys if json.dumps(c.get(k), sort_keys=True, default=str) != common[k]}
            for c in configs]


def correlation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) of two equally long arrays; nan where either is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(x, y)[0, 1]), float(np.corrcoef(rx, ry)[0, 1])


def scored_submissions(submissions_dir: Path, notes: list[str] | None = None) -> pd.DataFrame:
    """log.csv's rows that have both a CV and a numeric public score (none, with a note, if it is unreadable)."""
    path = Path(submissions_dir) / "log.csv"
    log = read_table(path, notes) if path.is_file() else None
    if log is None:
        return pd.DataFrame(columns=["run_id", "cv", "public_score", "time", "file", "competition"])
    for column in ("cv", "public_score", "run_id", "time", "file", "competition"):
        if column not in log:
            log[column] = ""
    log["cv"] = pd.to_numeric(log["cv"], errors="coerce")
    log["public_score"] = pd.to_numeric(log["public_score"], errors="coerce")
    return log.dropna(subset=["cv", "public_score"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------- rendering
def table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class=\"num\">{e(v)}</td>" if i in numeric else f"<td>{e(v)}</td>"
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def score(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def duration(seconds) -> str:
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "n/a"
    hours, rest = divmod(total, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


class Images:
    """Copies each figure into the report folder once and returns its relative, escaped path."""

    def __init__(self, out: Path):
        self.out = out

    def tag(self, source: Path, alt: str) -> str:
        relative = Path("img") / source.parent.parent.name / source.parent.name / source.name \
            if source.parent.name == "plots" else Path("img") / source.parent.name / source.name
        target = self.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, target)
        except OSError as exc:  # a plot replaced by a folder or unreadable: named, the page still builds
            return f'<span class="note">({e(source)} cannot be shown: {e(type(exc).__name__)})</span>'
        return f'<img src="{e(relative.as_posix())}" alt="{e(alt)}" title="{e(alt)}">'


def runs_section(runs: list[RunInfo]) -> str:
    """The runs, one table per metric they were scored by: numbers of different metrics are never ranked
    against each other (a run recorded before its metric is grouped under its task's score name)."""
    trained = [r for r in runs if not r.is_blend]
    if not trained:
        return "<h2>Runs</h2><p class=\"note\">No finished runs in this folder yet (make train writes them).</p>"
    differences = dict(zip((r.run_id for r in trained), config_differences([r.config for r in trained])))
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    for run in trained:
        key = (str(run.metrics.get("metric", "score")), str(run.metrics.get("direction", "max")))
        groups.setdefault(key, []).append(run)
    parts = ["<h2>Runs</h2><p class=\"note\">Config differences are against the most common value of each key "
             "among these runs (paths and names left out). CV: mean ± standard deviation over folds (a one-fold "
             "holdout has no spread); TTA gain in the metric's direction (positive: TTA helped).</p>"]
    if len(groups) > 1:
        parts.append(f"<p class=\"note\">These runs were scored by {len(groups)} different metrics: each has its "
                     "own table, and numbers of different tables are not comparable.</p>")
    for (metric, direction), members in groups.items():
        rows = []
        for run in members:
            m = run.metrics
            cv, tta = m.get("cv_mean"), m.get("cv_tta_mean")
            gain = "n/a"
            if cv is not None and tta is not None:
                gain = f"{(float(tta) - float(cv)) * (-1 if direction == 'min' else 1):+.4f}"
            changed = ", ".join(f"{k}={json.dumps(v, default=str)}"
                                for k, v in differences[run.run_id].items()) or "(most common config)"
            rows.append([run.run_id, m.get("competition", ""), metric, changed,
                         cv_text(cv, m.get("cv_std"), m.get("folds", [])),
                         cv_text(tta, m.get("cv_tta_std"), m.get("folds", [])),
                         gain, len(m.get("folds", [])), duration(m.get("wall_seconds"))])
        if len(groups) > 1:
            parts.append(f"<h3>Scored by {e(metric)} ({'lower' if direction == 'min' else 'higher'} is better)"
                         "</h3>")
        parts.append(table(["run", "competition", "metric", "config differences", "CV", "CV with TTA", "TTA gain",
                            "folds", "wall time"], rows, numeric={4, 5, 6, 7}))
    return "".join(parts)


def blends_section(runs: list[RunInfo]) -> str:
    blends = [r for r in runs if r.is_blend]
    if not blends:
        return ("<h2>Blends</h2><p class=\"note\">No blends yet: <code>make blend RUNS=\"&lt;run-id&gt; "
                "&lt;run-id&gt;\"</code>.</p>")
    rows = []
    for blend in blends:
        m = blend.metrics
        singles = m.get("run_oof_cv", {})
        parts = "; ".join(f"{r} (w {float(w):.2f}, CV {score(singles.get(r, {}).get('mean'))})"
                          for r, w in m.get("weights", {}).items())
        in_sample = score(m.get("in_sample_cv_mean")) if m.get("method") == "weights" else "-"
        honest = f"{score(m.get('cv_mean'))} ± {score(m.get('cv_std'))}"
        rows.append([blend.run_id, m.get("method", ""), m.get("metric", ""), parts, honest, in_sample])
    return ("<h2>Blends</h2><p class=\"note\">Honest CV: on each fold, weights fitted on the other folds' "
            "out-of-fold rows. In-sample: weights fitted on the rows they are scored on (optimistic, "
            "shown only for comparison).</p>" +
            table(["blend", "method", "metric", "runs (final weight, own CV)", "honest CV", "in-sample CV"], rows,
                  numeric={4, 5}))


def trust_section(submissions_dir: Path, out: Path, images: Images,
                  notes: list[str] | None = None) -> tuple[str, int]:
    scored = scored_submissions(submissions_dir, notes)
    n = len(scored)
    parts = ["<h2>Can the CV be trusted? CV vs public score</h2>"]
    if n == 0:
        parts.append(f"<p class=\"note\">No scored submissions in {e(Path(submissions_dir) / 'log.csv')} yet "
                     "(make submit logs each one with its CV and waits for the public score).</p>")
        return "".join(parts), 0
    labels = [r or Path(f).stem for r, f in zip(scored["run_id"], scored["file"])]
    chart = plot_cv_vs_public(scored["cv"].tolist(), scored["public_score"].tolist(), labels,
                              out / "cv_vs_public.png")
    pearson, spearman = correlation(scored["cv"].to_numpy(), scored["public_score"].to_numpy())
    flat = [name for name, column in (("CV", "cv"), ("public score", "public_score"))
            if np.ptp(scored[column].to_numpy(dtype=float)) == 0]
    if flat and n > 1:
        parts.append(f"<p class=\"warn\">Every scored submission has the same {e(' and the same '.join(flat))}: "
                     "with nothing varying, no chart or correlation can say whether the CV tracks the "
                     "leaderboard. Submit runs whose CV differs to find out.</p>")
    elif n < MIN_CORRELATION_POINTS:
        parts.append(f"<p class=\"warn\">Only {n} scored submission(s): a correlation needs at least "
                     f"{MIN_CORRELATION_POINTS} (and means little under 10). Submit more runs to see whether the "
                     "CV tracks the leaderboard.</p>")
    else:
        verdict = ("the CV ranks submissions as the leaderboard does" if spearman >= 0.7 else
                   "the CV tracks the leaderboard only loosely: check the split (duplicates, groups, shift)"
                   if spearman >= 0.3 else "the CV does not track the leaderboard: do not pick submissions by it")
        caveat = f" With n = {n} under 10 this is a first hint, not proof." if n < 10 else ""
        parts.append(f"<p>Pearson r = <b>{e(score(pearson))}</b>, Spearman ρ = <b>{e(score(spearman))}</b>, "
                     f"n = <b>{n}</b>: {e(verdict)}.{e(caveat)}</p>")
    parts.append(f'<img src="{e(chart.name)}" alt="CV vs public score">')
    rows = [[t, c, r, score(cv), score(p)] for t, c, r, cv, p in
            zip(scored["time"], scored["competition"], labels, scored["cv"], scored["public_score"])]
    parts.append(table(["time", "competition", "run", "CV", "public"], rows, numeric={3, 4}))
    return "".join(parts), n


def _search_folders(runs_dir: Path) -> list[Path]:
    """runs/search-*/ folders that have a results table (make results writes it)."""
    return sorted(p for p in Path(runs_dir).glob("search-*") if (p / "results.csv").is_file())


def searches_section(runs_dir: Path, images: Images, notes: list[str] | None = None) -> tuple[str, int]:
    parts = ["<h2>Searches</h2>"]
    shown = 0
    for folder in _search_folders(runs_dir):
        results = folder / "results.csv"
        frame = read_table(results, notes)
        if frame is None:
            continue
        shown += 1
        scored = f" (scored by {frame['metric'].iloc[0]})" if "metric" in frame and len(frame) else ""
        parts.append(f"<h3>{e(folder.name + scored)}</h3>")
        parts.append(table(list(map(str, frame.columns)), frame.head(50).values.tolist()))
        if len(frame) > 50:
            parts.append(f"<p class=\"note\">first 50 of {len(frame)} rows: {e(results)}</p>")
        plots = sorted((folder / "plots").glob("*.png"))
        parts.append("<div class=\"figs\">" + "".join(images.tag(p, f"{folder.name}: {p.stem}") for p in plots) +
                     "</div>")
    if not shown:
        parts.append("<p class=\"note\">No searches yet (make search writes runs/search-&lt;name&gt;/).</p>")
    return "".join(parts), shown


def run_details(run: RunInfo, images: Images) -> str:
    parts = [f"<h3 id=\"{e(run.run_id)}\">{e(run.run_id)}</h3>"]
    plots = run.folder / "plots"
    curves = sorted(plots.glob("history-fold-*.png"))
    figures = curves + [p for p in (plots / "confusion.png", plots / "boxes.png") if p.is_file()]
    if figures:
        parts.append("<div class=\"figs\">" + "".join(images.tag(p, f"{run.run_id}: {p.stem}") for p in figures) +
                     "</div>")
    pseudo = (run.metrics or {}).get("pseudo_labels")
    if pseudo:  # from which run, how many per class, and the CV without them (podium.runners.pseudo)
        lines = summary_lines(pseudo, float(run.metrics.get("cv_tta_mean") or 0.0))
        parts.append("<p>" + "<br>".join(e(line.strip()) for line in lines) + "</p>")
    per_class = run.folder / "per_class.csv"
    if per_class.is_file():
        frame = pd.read_csv(per_class, index_col=0)
        frame = frame.drop(index=[i for i in frame.index if str(i).endswith(" avg") or str(i) == "accuracy"])
        if "support" in frame:
            frame = frame[frame["support"] > 0]
        if "recall" in frame:
            worst = frame.sort_values(["recall"], kind="stable").head(WORST_SHOWN)
            rows = [[name, *(f"{row[c]:.3f}" if c != "support" else int(row[c]) for c in worst.columns)]
                    for name, row in worst.iterrows()]
            parts.append(f"<p>Worst {len(rows)} classes by recall (out of fold, with TTA):</p>")
            numeric = set(range(1, len(worst.columns) + 1))
            parts.append(table(["class", *map(str, worst.columns)], rows, numeric=numeric))
    return "".join(parts)


def _guarded_details(run: RunInfo, images: Images, notes: list[str]) -> str | None:
    """run_details, or None and a note naming the file when a hand-edited one of the run's files breaks it."""
    try:
        return run_details(run, images)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, pd.errors.ParserError) as exc:
        _note(notes, run.folder, f"its files (per_class.csv, plots, metrics.json) cannot be shown "
                                 f"({type(exc).__name__}: {_first_line(exc)})")
        return None


def build_report(runs_dir: str | Path = "runs", submissions_dir: str | Path = "submissions",
                 out: str | Path | None = None, clock=time.strftime) -> BuiltReport:
    """Rebuild the report folder from scratch: written next to it, then swapped in."""
    started = time.perf_counter()
    runs_dir, submissions_dir = Path(runs_dir), Path(submissions_dir)
    out = Path(out) if out else runs_dir / "report"
    building = _check_report_paths(runs_dir, submissions_dir, out)
    try:
        n_runs, n_blends, n_searches, n_scored = _build(runs_dir, submissions_dir, building, clock)
    except BaseException:
        remove_made(building, "the report being built")  # the previous report stays as it was
        raise
    remove_made(out, "the report", legacy=_report_before_markers)
    building.rename(out)
    files = [p for p in out.rglob("*") if p.is_file()]
    return BuiltReport(page=out / "index.html", n_runs=n_runs, n_blends=n_blends, n_searches=n_searches,
                       n_submissions=n_scored, n_files=len(files), bytes=sum(p.stat().st_size for p in files),
                       seconds=time.perf_counter() - started)


def _check_report_paths(runs_dir: Path, submissions_dir: Path, out: Path) -> Path:
    """Refuse, before building, an --out that podium may not replace; sweep what killed builds left; make
    (and mark) this build's staging folder beside `out`."""
    check_folder(runs_dir, "runs_dir")
    check_folder(submissions_dir, "submissions_dir")
    check_folder(out, "the report folder (--out)")
    holds = [p for p in (runs_dir, submissions_dir) if out.resolve() == p.resolve() or out.resolve() in p.resolve().parents]
    if holds:
        raise PodiumError(f"The report folder {out} would replace {holds[0]}.", expected="a folder of its own",
                          received=f"--out {out}", fix=f"leave --out unset ({runs_dir / 'report'}) or name a new folder")
    if out.is_dir() and any(out.iterdir()) and not (is_made(out) or _report_before_markers(out)):
        remove_made(out, "the report")  # raises: the folder holds what podium did not make
    remove_stale(out.parent, f".{out.name}.building-")
    building = out.with_name(f".{out.name}.building-{os.getpid()}")
    remove_made(building, "the report being built")
    return mark_made(building, "the report being built")


def _report_before_markers(folder: Path) -> bool:
    """A report an older podium wrote (no marker yet): its page, its chart and img/ only."""
    page = folder / "index.html"
    try:
        head = page.read_text(encoding="utf-8", errors="replace")[:400]
    except OSError:
        return False
    return "<title>podium report</title>" in head and all(
        p.name in ("index.html", "cv_vs_public.png", "img") for p in folder.iterdir())


def _build(runs_dir: Path, submissions_dir: Path, building: Path, clock) -> tuple[int, int, int, int]:
    """Write the page and its images into `building`; (runs, blends, searches, scored submissions)."""
    images = Images(building)
    notes: list[str] = []
    runs = find_runs(runs_dir, notes)
    trust, n_scored = trust_section(submissions_dir, building, images, notes)
    searches, n_searches = searches_section(runs_dir, images, notes)
    shown = {r.run_id: _guarded_details(r, images, notes) for r in runs if not r.is_blend}
    runs = [r for r in runs if r.is_blend or shown[r.run_id] is not None]  # a run that breaks is left out
    trained = [r for r in runs if not r.is_blend]
    details = "".join(shown[r.run_id] for r in trained) or "<p class=\"note\">No runs.</p>"
    contents = "".join(f'<li><a href="#{e(r.run_id)}">{e(r.run_id)}</a></li>' for r in trained)
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>podium report</title>"
            f"<style>{CSS}</style></head><body><h1>podium report</h1>"
            f"<p class=\"note\">Built by <code>make report</code> from {e(runs_dir)} and {e(submissions_dir)} "
            f"at {e(clock('%Y-%m-%d %H:%M:%S %z'))}. Regenerated each time: do not edit.</p>"
            + notes_section(notes) + runs_section(runs) + blends_section(runs) + trust + searches +
            f"<h2>Each run</h2><ul>{contents}</ul>{details}</body></html>\n")
    write_text(building / "index.html", page)
    return len(trained), len(runs) - len(trained), n_searches, n_scored
