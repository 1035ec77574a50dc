"""`make rehearse`: run a rendered inference kernel here, as Kaggle would, before spending GPU quota.

Kaggle re-runs a code competition's kernel on a hidden test set with other ids, with internet off and
with its own Python image. The rehearsal reproduces what can be reproduced here:
- a /kaggle/input-like tree built from local files: the competition's files, with the test images
  hard-linked under NEW shuffled ids and the sample submission rebuilt for them (a list of test ids
  frozen at render time would fail), and the packaged run (or, for run_source: kernel, the run laid
  out as the training kernel's output: <kernel-slug>/runs/<run_id>/);
- no network: the script runs inside `unshare -n` (a network namespace with only a loopback
  interface); where that is not permitted the rehearsal refuses unless allow_network is given;
- podium importable only from the script's inlined copy: the interpreter runs isolated (-I: no
  PYTHONPATH, no user site) and an import hook refuses `podium` from anywhere but the script's
  scratch folder, so podium's editable install cannot stand in; the script prints podium.__file__.
What it cannot reproduce: Kaggle's package versions (this venv's are podium's pins) and its hardware.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from podium.data.dataset import competition_root
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.paths import mark_made, remove_made
from podium.io import write_csv, write_json, write_text
from podium.kaggle.inference import find_run, package_run
from podium.submission.validate import read_competition_sample
from podium.tasks.base import Task

NEW_ID_PREFIX = "rehearse-"
# Runs the rendered script: podium only from its scratch copy, and the interfaces it can see printed.
BOOTSTRAP = r'''
import importlib.abc, importlib.machinery, os, runpy, socket, sys
script, src = sys.argv[1], os.path.join(os.environ["PODIUM_SCRATCH"], "src")

class OnlyInlinedPodium(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "podium":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [src])
        if spec is None:
            raise ImportError("podium is importable only from the script's inlined copy in " + src)
        return spec

sys.meta_path.insert(0, OnlyInlinedPodium())
names = sorted(name for _, name in socket.if_nameindex())
print("rehearsal: network interfaces: " + (", ".join(names) or "none"), flush=True)
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
'''


@dataclass
class RehearsalSummary:
    folder: Path  # the rehearsal's tree, log and summary
    returncode: int
    wall_seconds: float
    network: str  # how the script was cut off from the network
    podium_file: str  # where the script imported podium from
    inlined: bool  # podium_file is the script's own inlined copy
    n_test: int  # test images in the rehearsal's test set (new ids)
    n_rows: int = 0
    ids_match: bool = False  # submission ids are exactly the rebuilt sample's, in its order
    problems: list[str] = field(default_factory=list)  # validation problems of the submission
    accuracy: float | None = None  # against held-back labels, mapped back to the original ids
    accuracy_rows: int = 0  # how many rows the accuracy is on (test images with a held-back label)
    images_per_second: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    log: str = ""
    projection: dict = field(default_factory=dict)  # the hidden test set's time, extrapolated (project_hidden_run)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.inlined and self.ids_match and not self.problems


REHEARSAL_FOLDERS = {"input", "scratch", "working", "home"}  # what a rehearsal writes into its folder


def rehearse(cfg, task: Task, folder: str | Path, labels: str | Path | None = None, allow_network: bool = False,
             timeout: float = 3600.0, seed: int = 0, python: str = sys.executable,
             clock: Callable[[], float] = time.perf_counter) -> RehearsalSummary:
    """Run kernels/<slug>/podium_kernel.py (mode inference) offline on a renamed copy of the test set."""
    folder = Path(folder).resolve()
    spec, data_root = competition_root(cfg)
    if spec.layout == "pixels":  # its test images are CSV rows: renaming them means rewriting the CSV
        raise PodiumError("The rehearsal cannot rename the test images of a pixels layout (rows of a CSV).",
                          expected="a competition whose test images are files (layout folder, csv or filename)",
                          received=f"layout: pixels ({spec.test_csv})",
                          fix="run the kernel script locally on the competition folder instead; its test index, "
                              "cache and submission are the same code as make predict")
    rendered = _rendered(folder, cfg)
    network = _network_mode(allow_network)
    data_root = data_root.resolve()
    index = load_index(data_root / "index.parquet")
    work = folder / "rehearsal"
    remove_made(work, "a rehearsal", legacy=lambda p: {q.name for q in p.iterdir()} <= REHEARSAL_FOLDERS)
    mark_made(work, "a rehearsal")
    input_root, scratch, working = work / "input", work / "scratch", work / "working"
    for path in (input_root, scratch, working, work / "home"):
        path.mkdir(parents=True)
    id_map, sample = _competition_tree(spec, data_root, index, input_root / spec.slug, seed)
    truth = read_labels(labels, spec, set(id_map.values())) if labels else None  # before the script runs
    write_csv(work / "ids.csv", pd.DataFrame({"id": list(id_map), "original_id": list(id_map.values())}))
    _run_tree(cfg, task, rendered, input_root)
    command = [python, "-I", "-c", BOOTSTRAP, str(folder / "podium_kernel.py")]
    if network.startswith("none"):
        command = ["unshare", "-n", *command]
    started = clock()
    returncode, log = _run_script(command, work, input_root, scratch, working, timeout)
    wall = clock() - started
    write_text(work / "kernel.log", log)
    found = re.findall(r"podium imported from (\S+)", log)
    podium_file = found[-1] if found else ""
    inlined = bool(podium_file) and Path(podium_file).resolve().is_relative_to((scratch / "src").resolve())
    summary = RehearsalSummary(folder=work, returncode=returncode, wall_seconds=wall, network=network,
                               podium_file=podium_file, inlined=inlined, n_test=len(id_map), log=log)
    if returncode == 0:
        _check_outputs(summary, task, spec, working, sample, id_map, truth, _classes(cfg, spec, input_root))
        summary.projection = project_hidden_run(summary, spec)
    record = {k: v for k, v in asdict(summary).items() if k != "log"}
    write_json(work / "rehearsal.json", {**record, "ok": summary.ok, "labels": str(labels or ""),
                                         "kernel_log": str(work / "kernel.log")})
    return summary


def _rendered(folder: Path, cfg) -> dict:
    path = folder / "podium-kernel.json"
    if not path.is_file():
        raise PodiumError(f"{folder} holds no rendered kernel.", expected=str(path), received="no such file",
                          fix="make kernel EXP=<config> KERNEL=<spec with mode: inference> first (ARGS=--no-upload "
                              "renders without uploading)")
    rendered = json.loads(path.read_text(encoding="utf-8"))
    if rendered.get("mode") != "inference":
        raise PodiumError(f"The kernel in {folder} is a training kernel.", expected="mode: inference",
                          received=f"mode: {rendered.get('mode', 'train')}",
                          fix="set mode: inference in the kernel spec and run make kernel again")
    if rendered.get("run_id") != cfg.run_id:
        raise PodiumError(f"The kernel in {folder} was rendered for another run.", expected=f"run {cfg.run_id}",
                          received=f"run {rendered.get('run_id')}", fix="make kernel with the same EXP and ARGS")
    return rendered


def _network_mode(allow_network: bool) -> str:
    """'none (unshare -n)' when a network namespace can be made here; else refuse, unless allowed."""
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
        if probe.returncode == 0:
            return "none (unshare -n: a network namespace with only loopback)"
        reason = probe.stderr.strip() or f"exit {probe.returncode}"
    else:
        reason = "no unshare command"
    if allow_network:
        return f"NOT isolated ({reason}); the script could reach the network"
    raise PodiumError("The rehearsal cannot cut the script off from the network here.",
                      expected="`unshare -n` permitted (root, or user namespaces enabled)", received=reason,
                      fix="run as root / enable unprivileged user namespaces, or pass --allow-network to rehearse "
                          "with network (then it does not prove the kernel works offline)")


def _competition_tree(spec, data_root: Path, index: pd.DataFrame, target: Path, seed: int
                      ) -> tuple[dict[str, str], pd.DataFrame]:
    """The competition folder with the test images under new shuffled ids; (new id -> old id, new sample)."""
    # never linked (written here instead): the test folder and the sample's top folder; podium's own files
    skip = {spec.test_dir.split("/")[0], spec.sample_submission.split("/")[0], "index.parquet", "cache", "splits"}
    target.mkdir(parents=True)
    for path in sorted(data_root.iterdir()):
        if path.name.startswith(".") or path.name in skip:
            continue
        (target / path.name).symlink_to(path.resolve(), target_is_directory=path.is_dir())
    tests = index[index["split"] == "test"].sort_values("id").reset_index(drop=True)
    order = np.random.default_rng(seed).permutation(len(tests))
    id_map = {}
    for position, row in tests.iterrows():
        source = data_root / str(row["path"])
        stem = f"{NEW_ID_PREFIX}{order[position]:06d}"
        new_id = stem if spec.submission_id == "stem" else stem + source.suffix
        _link(source, target / spec.test_dir / f"{stem}{source.suffix}")
        id_map[new_id] = str(row["id"])
    sample = read_competition_sample(data_root / spec.sample_submission, spec)
    back = {old: new for new, old in id_map.items()}
    unknown = [i for i in sample[spec.submission_id_column] if i not in back]
    if unknown:
        raise PodiumError("The sample submission names ids that are not test images of the index.",
                          expected="every sample id among the indexed test images",
                          received=f"{len(unknown)} unknown, e.g. {unknown[:3]}", fix="make data again")
    sample = sample.assign(**{spec.submission_id_column: sample[spec.submission_id_column].map(back)})
    sample = sample.sort_values(spec.submission_id_column, kind="stable").reset_index(drop=True)
    (target / spec.sample_submission).parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(target / spec.sample_submission, index=False)
    return id_map, sample


def _run_tree(cfg, task: Task, rendered: dict, input_root: Path) -> None:
    """The run where the kernel's sources put it: the uploaded dataset, or the training kernel's output."""
    if rendered.get("run_source", "dataset") == "dataset":
        source = Path(rendered["run_dataset"])
        meta = json.loads((source / "dataset-metadata.json").read_text(encoding="utf-8"))
        shutil.copytree(source, input_root / meta["id"].split("/")[1], copy_function=_link,
                        ignore=shutil.ignore_patterns("dataset-metadata.json"))
    else:
        slug = rendered["run_kernel"].split("/")[1]
        runs = package_run(cfg, task, input_root / slug / "runs", rendered["run_kernel"])
        (runs / "dataset-metadata.json").unlink()


def _run_script(command: list[str], work: Path, input_root: Path, scratch: Path, working: Path, timeout: float
                ) -> tuple[int, str]:
    """(return code, log) of the kernel script run as Kaggle runs it: its own HOME, the competition under the
    input folder, nothing of this environment but PATH (and KERAS_BACKEND); 124 when it ran out of time."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"), "LANG": "C.UTF-8",
           "PODIUM_KAGGLE_INPUT": str(input_root), "PODIUM_KAGGLE_WORKING": str(working),
           "PODIUM_SCRATCH": str(scratch), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    if "KERAS_BACKEND" in os.environ:
        env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
    try:
        done = subprocess.run(command, env=env, cwd=working, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        return done.returncode, done.stdout
    except subprocess.TimeoutExpired as exc:
        log = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, log + f"\nrehearsal: stopped after {timeout:.0f} s"


def _classes(cfg, spec, input_root: Path) -> list[str]:
    """The class names of the run the script found, as it found it."""
    run_dir = find_run(input_root, cfg.run_id, skip=(spec.slug,))
    return json.loads((run_dir / "classes.json").read_text(encoding="utf-8"))["classes"]


def _check_outputs(summary: RehearsalSummary, task: Task, spec, working: Path, sample: pd.DataFrame,
                   id_map: dict[str, str], truth: pd.DataFrame | None, classes: list[str]) -> None:
    id_column = spec.submission_id_column
    path = working / "submission.csv"
    if not path.is_file():
        summary.problems.append("the script wrote no submission.csv")
        return
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    summary.n_rows = len(frame)
    summary.ids_match = id_column in frame and frame[id_column].tolist() == sample[id_column].tolist()
    summary.problems += task.rehearsal_problems(frame, sample, spec, classes)
    record = working / "podium-run.json"
    if record.is_file():
        run = json.loads(record.read_text(encoding="utf-8"))
        summary.timings, summary.images_per_second = run.get("timings", {}), run.get("images_per_second")
    if truth is not None and task.labels_per_image and spec.resolved_submission_format == "label":
        summary.accuracy, summary.accuracy_rows = score_against_labels(frame, id_map, truth, spec)


CODE_COMPETITION_HOURS = 9.0  # a code competition's usual re-run limit on Kaggle, when the spec states none
PER_IMAGE_STAGES = ("index", "decode", "model")  # the script's stages that grow with the test set


def project_hidden_run(summary: RehearsalSummary, spec) -> dict:
    """The rehearsal's time extrapolated to the hidden test set: the stages that grow with the images (index,
    decode, model) per image x the hidden count (the spec's hidden_test_images, else the visible test set),
    plus the rest of the wall time as it was (start-up, loading the package, writing); checked against the
    spec's time_limit_hours (a code competition without one: CODE_COMPETITION_HOURS, said to be assumed).
    {} when the script recorded no timings."""
    grown = sum(float(summary.timings.get(stage, 0.0)) for stage in PER_IMAGE_STAGES)
    if grown <= 0 or summary.n_test <= 0:
        return {}
    hidden = int(spec.hidden_test_images or summary.n_test)
    per_image = grown / summary.n_test
    fixed = max(0.0, summary.wall_seconds - grown)
    projected = fixed + per_image * hidden
    if spec.time_limit_hours:
        limit, source = 3600.0 * spec.time_limit_hours, "the competition spec's time_limit_hours"
    elif spec.submission_kind == "code":
        limit, source = 3600.0 * CODE_COMPETITION_HOURS, "assumed: Kaggle's usual code-competition limit"
    else:
        limit, source = None, "none: the spec states no time_limit_hours"
    counted = "the spec's hidden_test_images" if spec.hidden_test_images else "the visible test set's size"
    warning = ""
    if limit is not None and projected > limit:
        warning = (f"{hidden:,} hidden test images would take about {projected / 3600:.1f} h here, over the "
                   f"{limit / 3600:.1f} h limit ({source}): fewer TTA views or folds, a smaller image_size or a "
                   f"faster accelerator")
    return {"hidden_images": hidden, "hidden_images_from": counted, "seconds_per_image": per_image,
            "fixed_seconds": fixed, "projected_seconds": projected, "limit_seconds": limit,
            "limit_from": source, "fits": limit is None or projected <= limit, "warning": warning}


def projection_lines(projection: dict) -> list[str]:
    """The extrapolation as the CLI prints it."""
    if not projection:
        return ["no time projection: the script recorded no timings"]
    limit = projection["limit_seconds"]
    lines = [f"{projection['hidden_images']:,} hidden test images ({projection['hidden_images_from']}) would take "
             f"about {projection['projected_seconds'] / 60:.1f} min here ({1 / projection['seconds_per_image']:.1f} "
             f"images/s through index + decode + model, {projection['fixed_seconds']:.0f} s fixed); limit "
             + (f"{limit / 3600:.1f} h ({projection['limit_from']})" if limit else projection["limit_from"])]
    if projection["warning"]:
        lines.append(f"WARNING: {projection['warning']}")
    return lines


def read_labels(labels: str | Path, spec, test_ids: set[str]) -> pd.DataFrame:
    """The held-back labels (<id column>,<label column>, the sample submission's header), checked before the
    script runs: a missing file, another header, or no id among the test images is an error naming it."""
    path = Path(labels)
    id_column, label_column = spec.submission_id_column, spec.submission_label_column
    fix = (f"give a CSV with the header {id_column},{label_column} and one row per labelled test image, by the "
           "competition's test ids")
    if not path.is_file():
        raise PodiumError(f"The held-back labels {path} do not exist.", expected="a CSV file",
                          received="no such file" if not path.exists() else "not a file", fix=fix)
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PodiumError(f"The held-back labels {path} cannot be read as a CSV.", expected=f"{id_column},"
                          f"{label_column} rows", received=f"{type(exc).__name__}: {str(exc)[:120]}", fix=fix) from exc
    missing = [c for c in (id_column, label_column) if c not in truth.columns]
    if missing:
        raise PodiumError(f"The held-back labels {path} have another header.",
                          expected=f"columns {id_column},{label_column} (the sample submission's)",
                          received=f"columns {','.join(map(str, truth.columns)) or '(none)'}", fix=fix)
    truth = truth[[id_column, label_column]]
    duplicated = truth[id_column].duplicated()
    if duplicated.any():
        raise PodiumError(f"The held-back labels {path} name an id twice.", expected="each id once",
                          received=f"{int(duplicated.sum())} repeated, e.g. {truth[id_column][duplicated].iloc[0]!r}",
                          fix="keep one label per id; " + fix)
    matched = int(truth[id_column].isin(test_ids).sum())
    if matched == 0:
        raise PodiumError(f"No id of the held-back labels {path} is a test image of the competition.",
                          expected=f"ids among the {len(test_ids)} test ids, e.g. {sorted(test_ids)[:2]}",
                          received=f"{len(truth)} rows, e.g. {truth[id_column].head(2).tolist()}", fix=fix)
    return truth


def score_against_labels(frame: pd.DataFrame, id_map: dict[str, str], truth: pd.DataFrame, spec
                         ) -> tuple[float | None, int]:
    """(accuracy, rows it is on): the submission mapped back to the original ids, against the labels."""
    id_column, label_column = spec.submission_id_column, spec.submission_label_column
    predicted = frame.assign(**{id_column: frame[id_column].map(id_map)})
    merged = predicted.merge(truth, on=id_column, suffixes=("", "_true"))
    if not len(merged):
        return None, 0
    return float((merged[label_column] == merged[f"{label_column}_true"]).mean()), len(merged)


def accuracy_line(summary: RehearsalSummary, labels: str | Path) -> str:
    """The accuracy with the count it is on: an accuracy on 5 of 500 test images says so."""
    if summary.accuracy is None:
        return (f"no accuracy against {labels} (the script failed, the task is not classification, or no row of "
                "the submission has a label there)")
    line = f"accuracy against {labels}: {summary.accuracy:.4f} on {summary.accuracy_rows} rows"
    if summary.accuracy_rows < summary.n_test:
        line += f" of {summary.n_test} test images (only those have a held-back label)"
        if summary.accuracy_rows < min(100, summary.n_test):
            line += "; too few to tell much"
    return line


def _link(source, target) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
