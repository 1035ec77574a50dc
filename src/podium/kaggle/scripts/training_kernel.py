"""The training kernel's job: the whole job on Kaggle, as `podium run` runs it here
(podium.workflow.run_all: data, folds, train, predict).

The rendered kernel (scripts/kernel.py) runs main() from its inlined copy of podium: the competition's
files from /kaggle/input, everything kept in /kaggle/working, podium-run.json recording the run token.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from podium.config import ExperimentConfig
from podium.kaggle.inference import write_run_classes
from podium.kaggle.scripts.runtime import competition_input, kaggle_roots
from podium.tasks import get_task
from podium.training import time_budget
from podium.workflow import run_all

READS = ("config", "competition", "spec_yaml", "weights_file", "session_budget_seconds")  # what make kernel fills in


def kaggle_config(settings: dict[str, Any], work: Path, scratch: Path) -> ExperimentConfig:
    """The rendered config with Kaggle's folders (and the competition spec / weights that travel with it)."""
    values = dict(settings["config"], data_dir=str(scratch / "data"), runs_dir=str(work / "runs"),
                  submissions_dir=str(work / "submissions"), verbose=2)
    if settings["spec_yaml"].strip():
        spec_path = scratch / "competition.yaml"
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(settings["spec_yaml"])
        values["competition"] = str(spec_path)
    if settings["weights_file"]:
        values["weights"] = settings["weights_file"]
    return ExperimentConfig(**values)


def main(settings: dict[str, Any], token: str, scratch: Path) -> None:
    source, work = kaggle_roots()
    cfg = kaggle_config(settings, work, scratch)
    task = get_task(cfg.task)  # resolved once: the kernel is an entry point

    def stage_done(stage: str, summary: object) -> None:
        if stage == "train":  # runs/<run_id>/ is then a run package: an inference kernel can read this output
            write_run_classes(cfg, task)

    # the session's limit less a margin, when the config sets no time_budget (podium.kaggle.kernels.kernel_budget)
    seconds = float(settings.get("session_budget_seconds") or 0)
    with time_budget.session_budget(seconds) if seconds > 0 else contextlib.nullcontext():
        # progress as plain lines in the log (podium.progress)
        job = run_all(cfg, task, source_dir=str(competition_input(source, settings["competition"])), report=stage_done)
    shutil.copyfile(job.predict.submission, work / "submission.csv")
    record = {"token": token, "run_id": cfg.run_id, "cv_mean": job.train.cv_mean,
              "cv_tta_mean": job.train.cv_tta_mean, "submission": str(job.predict.submission.relative_to(work))}
    (work / "podium-run.json").write_text(json.dumps(record, indent=1))
    print(job.train.report_text)
