"""CLI verbs of blending and the report: blend, report. Handlers print; the work is in podium.blend and
reports/html.py."""

from __future__ import annotations

import argparse
from typing import Callable

from podium.lazy import LazyModule
# imported on first use: `podium --help` loads none of this
html = LazyModule("podium.reports.html")
podium_blend = LazyModule("podium.blend")
tasks = LazyModule("podium.tasks")

AddVerb = Callable[..., argparse.ArgumentParser]


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli/main.py's `verb(name, handler, help, config=True)` helper."""
    blend = verb("blend", _cmd_blend, "blend finished runs of one split: honest CV, weights, one submission",
                 config=False)
    blend.add_argument("--runs", nargs="*", default=[], help="run ids (folders of runs/)")
    blend.add_argument("--blend", help="blend YAML: runs, method, name (the command line wins per key)")
    blend.add_argument("--method", help="weights (fitted, default) | mean | rank")
    blend.add_argument("--name", help="the blend's name (default: a hash of its runs and method)")
    blend.add_argument("--runs-dir", default="runs")
    report = verb("report", _cmd_report, "one static HTML page over runs/ and submissions/ (runs/report/)",
                  config=False)
    report.add_argument("--runs-dir", default="runs")
    report.add_argument("--submissions-dir", default="submissions")
    report.add_argument("--out", help="output folder (default: <runs-dir>/report)")


def _cmd_blend(args) -> None:
    runs = [r for item in args.runs for r in item.split()]
    spec = podium_blend.load_blend_spec(args.blend, runs=runs, method=args.method, name=args.name)
    task = tasks.get_task(podium_blend.run_config(spec.runs[0], args.runs_dir).task)  # the runs' task, from the first run's config
    summary = podium_blend.run_blend(spec, task, args.runs_dir)
    print("\n".join(podium_blend.summary_lines(summary)))


def _cmd_report(args) -> None:
    built = html.build_report(args.runs_dir, args.submissions_dir, args.out)
    print(f"report: {built.page} ({built.n_runs} runs, {built.n_searches} searches, {built.n_blends} blends, "
          f"{built.n_submissions} logged submissions; {built.n_files} files, {built.bytes / 1e6:.1f} MB, "
          f"{built.seconds:.1f} s)")
    print(f"open it from disk: file://{built.page.resolve()}")
