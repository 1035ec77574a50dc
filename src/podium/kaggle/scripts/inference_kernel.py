"""The inference kernel's job, for a code competition: offline (no internet, no pip), it finds the packaged
run under the input folder, indexes the competition's test images when it runs (a code competition's hidden
test set has other ids than the public one), predicts TTA views x folds, and writes submission.csv
validated against the sample found then.

The rendered kernel (scripts/kernel.py) runs main() from its inlined copy of podium. Standard library only
at the top (as podium.kaggle.inference): check_environment says what the Kaggle image lacks before
anything heavy is imported.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from podium.errors import PodiumError
from podium.kaggle import inference
from podium.kaggle.scripts.runtime import competition_input, kaggle_roots
from podium.lazy import LazyModule

tasks = LazyModule("podium.tasks")  # imported on first use: pandas after check_environment, not before

READS = ("run_id", "competition", "spec_yaml", "inference")  # the settings make kernel fills in


def predict(settings: dict[str, Any], env: inference.Environment, source: Path, work: Path, scratch: Path
            ) -> inference.InferenceSummary:
    """Find the run (never walking the competition's own folder, maybe 100,000 test files) and predict."""
    competition = competition_input(source, settings["competition"])
    skip = (competition.name,) if competition.parent == source else (competition.parent.name,)
    run_dir = inference.find_run(source, settings["run_id"], skip=skip)
    for note in inference.version_notes(run_dir, env):
        print(f"inference: note: {note}", flush=True)
    overrides = dict(settings["inference"])  # the inference-time settings of the rendered config (tta, ...)
    if settings["spec_yaml"].strip() and not (run_dir / "competition.yaml").is_file():
        spec_path = scratch / "competition.yaml"
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(settings["spec_yaml"])
        overrides["competition"] = str(spec_path)
    print(f"inference: run {run_dir}; competition files {competition}", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    task = tasks.get_task(inference.package_config(run_dir, overrides, scratch / "work").task)  # resolved once, here
    return inference.predict_from_package(run_dir, task, competition, work / "submission.csv", scratch / "work",
                                          overrides, progress=True)  # plain lines in the log (podium.progress)


def main(settings: dict[str, Any], token: str, scratch: Path) -> None:
    started = time.perf_counter()
    source, work = kaggle_roots()
    try:
        env = inference.check_environment()  # before anything heavy: say what is missing, then stop
        print(inference.describe_environment(env), flush=True)
        summary = predict(settings, env, source, work, scratch)
    except PodiumError as exc:
        raise SystemExit(f"podium: {exc}")
    print(f"inference: {summary.n_rows} rows -> {summary.submission} ({summary.n_unreadable} unreadable "
          f"test images got {summary.unreadable_note})")
    print(f"inference: predicted {summary.counts}")
    for line in inference.timing_lines(summary):
        print(line)
    record = {"token": token, "run_id": summary.run_id, "mode": "inference", "n_test": summary.n_test,
              "n_rows": summary.n_rows, "n_unreadable": summary.n_unreadable, "timings": summary.timings,
              "images_per_second": summary.images_per_second, "submission": "submission.csv",
              "podium_file": env.podium_file, "versions": env.versions}
    (work / "podium-run.json").write_text(json.dumps(record, indent=1))
    print(f"inference: done in {time.perf_counter() - started:.1f} s")
