"""Offline prediction from a packaged run: what a code competition's inference kernel runs on Kaggle
(internet off, no pip, a hidden test set with other ids), and what `make rehearse` runs here first.

One module owns both sides of the package format, so writer and reader cannot drift apart:
  <run_id>/config.yaml        the run's resolved config (what the model was trained with)
  <run_id>/competition.yaml   the competition spec it was trained for (a local spec path means nothing on Kaggle)
  <run_id>/classes.json       {"classes": model output order, "counts": readable train images per class}
  <run_id>/package.json       run id, task, folds, and the keras/backend versions that saved the checkpoints
  <run_id>/metrics.json       the run's CV report (for people; prediction does not read it)
  <run_id>/fold-<k>/best.keras
  <run_id>/<task files>       what the task's submission writer reads from the run folder (Task.package_files:
                              multi-label's thresholds.json, chosen out of fold), copied into the run folder
A training kernel's own output (runs/<run_id>/ under /kaggle/input/<kernel-slug>/) is read the same way:
the training script writes classes.json into its run folder.

Nothing about the test set is frozen here: the test images are indexed when predict_from_package runs,
from the competition folder it is given, and the sample submission found there decides the rows.
The top of this module imports only the standard library, so check_environment can run first on a
Kaggle image whose packages differ from podium's pins and say what is missing before anything fails.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import podium
from podium.lazy import LazyModule
from podium.errors import PodiumError

# imported on first use: this module's top is standard library only, so check_environment runs first
competitions = LazyModule("podium.data.competitions")
config = LazyModule("podium.config")
data_index = LazyModule("podium.data.index")
dataset = LazyModule("podium.data.dataset")
io = LazyModule("podium.io")
predict = LazyModule("podium.runners.predict")
validate = LazyModule("podium.submission.validate")
workflow = LazyModule("podium.workflow")

RUN_FILES = ("config.yaml", "competition.yaml", "classes.json", "package.json", "metrics.json")
FIND_DEPTH = 5  # how deep under /kaggle/input a run folder is looked for
# Third-party modules podium's prediction path imports itself (measured with an import hook around
# predict_from_package on the demo: sklearn comes in through podium.data.folds; keras reads the weights
# inside a .keras file with h5py), with the lowest version podium's code is known to need. keras 3 is
# required: podium's checkpoints are Keras 3 `.keras` files and its code uses keras.ops.
REQUIRED = (("numpy", ""), ("pandas", ""), ("PIL", ""), ("yaml", ""), ("h5py", ""), ("tqdm", ""),
            ("sklearn", ""), ("keras", "3.0"))
BACKENDS = ("tensorflow", "jax")


# ------------------------------------------------------------------------------------ environment
@dataclass
class Environment:
    versions: dict[str, str]  # module -> version found
    backend: str
    podium_file: str  # where podium was imported from: the script's inlined copy on Kaggle


def check_environment(required: tuple[tuple[str, str], ...] = REQUIRED) -> Environment:
    """Import what prediction needs; one PodiumError naming everything missing or too old, else the versions."""
    versions, problems = {}, []
    for name, minimum in required:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # an ImportError, or a broken install failing on import
            problems.append(f"{name} ({type(exc).__name__}: {exc})")
            continue
        versions[name] = str(getattr(module, "__version__", "?"))
        if minimum and _version_tuple(versions[name]) < _version_tuple(minimum):
            problems.append(f"{name} {versions[name]} (needs >= {minimum})")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        problems.append(f"KERAS_BACKEND={backend} (podium runs on {' or '.join(BACKENDS)})")
    else:
        try:
            versions[backend] = str(getattr(importlib.import_module(backend), "__version__", "?"))
        except Exception as exc:
            problems.append(f"{backend}, the keras backend ({type(exc).__name__}: {exc})")
    if problems:
        raise PodiumError("This Python environment lacks what podium's prediction needs.",
                          expected="importable " + ", ".join(n + (f" >= {m}" if m else "") for n, m in required)
                                   + f", and a keras backend ({' or '.join(BACKENDS)})",
                          received="; ".join(problems),
                          fix="on Kaggle pick an environment (kernel settings > Environment) with Keras 3 and "
                              "TensorFlow or JAX; with internet off nothing can be installed")
    return Environment(versions, backend, str(Path(podium.__file__).resolve()))


def _version_tuple(text: str) -> tuple[int, ...]:
    """"3.15.1" -> (3, 15, 1); "3.0.0rc1" -> (3, 0, 0); "?" -> ()."""
    parts = []
    for piece in text.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def package_notes(run_dir: Path) -> list[str]:
    """What a packaged run says wherever it is used (`make kernel`, the kernel's log): folds packaged before
    their training finished (allow_unfinished=true), from package.json's `unfinished_folds`."""
    path = Path(run_dir) / "package.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    unfinished = saved.get("unfinished_folds") or []
    if not unfinished:
        return []
    return [f"UNFINISHED: fold(s) {unfinished} of run {saved.get('run_id')} were packaged before their training "
            "finished (allow_unfinished=true): their checkpoints are of an early epoch"]


def version_notes(run_dir: Path, env: Environment) -> list[str]:
    """Warnings when the checkpoints were saved by a newer keras, or another backend, than the one here,
    and the package's own notes (unfinished folds)."""
    path = Path(run_dir) / "package.json"
    if not path.is_file():
        return []
    saved = json.loads(path.read_text(encoding="utf-8"))
    notes = package_notes(run_dir)
    here = env.versions.get("keras", "")
    if saved.get("keras") and _version_tuple(here)[:2] < _version_tuple(saved["keras"])[:2]:
        notes.append(f"the checkpoints were saved by keras {saved['keras']}, this image has keras {here}: "
                     "loading may fail; rehearse with that keras or pick a newer Kaggle environment")
    if saved.get("backend") and saved["backend"] != env.backend:
        notes.append(f"trained under the {saved['backend']} backend, predicting under {env.backend} "
                     "(Keras 3 checkpoints are backend-independent; numbers may differ in the last digits)")
    return notes


# -------------------------------------------------------------------------------------- packaging
def class_table(cfg, task) -> dict[str, list]:
    """The model's output order and the readable train images per class, from the index used in training."""
    spec, root = dataset.competition_root(cfg)
    index = data_index.load_index(root / "index.parquet")
    classes = data_index.class_names(index, spec, task)
    train = index[(index["split"] == "train") & index["ok"]]
    counts = train["label"].astype(str).value_counts()
    return {"classes": classes, "counts": [int(counts.get(name, 0)) for name in classes]}


def write_run_classes(cfg, task) -> Path:
    """classes.json beside the run's checkpoints (the training kernel does this, so its output is a package)."""
    return io.write_json(cfg.run_dir / "classes.json", class_table(cfg, task))


def package_run(cfg, task, folder: str | Path, ref: str) -> Path:
    """Write the dataset folder of a trained run for an inference kernel; refuses a run with untrained folds.

    Checkpoints are hard-linked when the file system allows (no copy of large files), else copied;
    a file already there with the same content is left alone, so an unchanged run keeps its bytes and
    mtimes and its upload is skipped. `task`: the run's task object, resolved by the entry point (make kernel).
    """
    _require_task(cfg, task)
    used = predict.used_folds(cfg)  # raises, naming the missing folds, and unfinished ones unless allow_unfinished
    checkpoints = [u.checkpoint for u in used]
    folder = Path(folder)
    target = folder / cfg.run_id
    table = _write_package_records(cfg, task, target, used)
    metrics = cfg.run_dir / "metrics.json"
    if metrics.is_file():
        place_file(metrics, target / "metrics.json")
    else:
        io.write_json(target / "metrics.json", {"run_id": cfg.run_id, "note": "the run has no metrics.json "
                                             "(its report was not written); the checkpoints are complete"})
    for fold, checkpoint in zip(cfg.folds, checkpoints):
        place_file(checkpoint, target / f"fold-{fold}" / "best.keras")
    for path in task.package_files(cfg, [str(c) for c in table["classes"]]):
        place_file(path, target / path.name)
    slug = ref.split("/")[1]
    io.write_json(folder / "dataset-metadata.json", {"id": ref, "title": slug.replace("-", " ")[:50],
                                                  "licenses": [{"name": "CC0-1.0"}]})
    return folder


def _write_package_records(cfg, task, target: Path, used: list) -> dict[str, list]:
    """The package's config (TTA views resolved), competition spec, classes.json and package.json."""
    import dataclasses

    import keras


    target.mkdir(parents=True, exist_ok=True)
    # the kernel predicts with the views `make predict` would: tta_auto resolved here, against the run's metrics
    config.save_config(dataclasses.replace(workflow.measured_tta(cfg)[0], tta_auto=False), target / "config.yaml")
    spec = competitions.load_competition(cfg.competition)
    io.write_yaml(target / "competition.yaml",
               {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()})
    table = class_table(cfg, task)
    io.write_json(target / "classes.json", table)
    io.write_json(target / "package.json", {"run_id": cfg.run_id, "task": cfg.task, "folds": list(cfg.folds),
                                         "folds_used": [{**u.to_dict(), "checkpoint": f"fold-{u.fold}/best.keras"}
                                                        for u in used],
                                         "unfinished_folds": [u.fold for u in used if not u.finished],
                                         "keras": keras.__version__, "backend": keras.backend.backend(),
                                         "podium": podium.__version__})
    return table


def run_dataset_slug(kernel_slug: str) -> str:
    """The run dataset of an inference kernel: <kernel-slug>-run, within Kaggle's 50 characters."""
    return f"{kernel_slug[:46]}-run"


def place_file(source: Path, target: Path) -> bool:
    """Hard link (else copy) source to target unless target already holds the same bytes; True if written."""
    source, target = Path(source).expanduser(), Path(target)
    if target.is_file() and (os.path.samefile(source, target) or (target.stat().st_size == source.stat().st_size
                                                                  and io.file_sha256(target) == io.file_sha256(source))):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return True



# ------------------------------------------------------------------------------------ finding a run
def find_run(input_root: str | Path, run_id: str, skip: tuple[str, ...] = (), depth: int = FIND_DEPTH) -> Path:
    """The packaged run under input_root: a folder with config.yaml and fold-*/best.keras.

    The folder named run_id wins; otherwise the only run found. (A training kernel's run id can differ
    from the local one, e.g. when it trained from an uploaded weights file.) `skip`: top-level folders
    not to walk (the competition's own, which can hold 100,000 test files).
    """
    input_root = Path(input_root)
    found = []
    base_depth = len(input_root.parts)
    for directory, subdirs, files in os.walk(input_root):
        here = Path(directory)
        level = len(here.parts) - base_depth
        if level == 1 and here.name in skip:
            subdirs[:] = []
            continue
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if level < depth else []
        if "config.yaml" in files and any(here.glob("fold-*/best.keras")):
            found.append(here)
    named = [path for path in found if path.name == run_id]
    if named or len(found) == 1:
        return (named or found)[0]
    raise PodiumError(f"No packaged run {run_id} under {input_root}." if not found else
                      f"Several packaged runs under {input_root}, none named {run_id}.",
                      expected=f"one folder <run_id>/ holding config.yaml and fold-<k>/best.keras, at most "
                               f"{depth} levels down", received=", ".join(str(p) for p in found) or "none",
                      fix="attach the run dataset (or the training kernel's output) to the kernel: "
                          "make kernel uploads it unless --no-upload")


# --------------------------------------------------------------------------------------- prediction
@dataclass
class InferenceSummary:
    submission: Path
    run_id: str
    n_test: int
    n_rows: int
    n_unreadable: int
    unreadable_note: str
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def images_per_second(self) -> float:
        seconds = self.timings.get("decode", 0.0) + self.timings.get("model", 0.0)
        return self.n_test / seconds if seconds > 0 else float("nan")


def __getattr__(name: str) -> Any:
    """INFERENCE_KEYS is podium.config's (derived from the keys' roles), read on use: this module's top stays
    standard library only."""
    if name == "INFERENCE_KEYS":
        return config.INFERENCE_KEYS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require_task(cfg, task) -> None:
    """The task object handed down must be the run's: its submission form and files follow from it."""
    if task.name != cfg.task:
        raise PodiumError(f"Run {cfg.run_id} trained task={cfg.task}, and was given the {task.name} task.",
                          expected=f"task={cfg.task}", received=f"task={task.name}",
                          fix="pass the task the run's config.yaml names (its task: key)")


def package_config(run_dir: Path, overrides: dict[str, Any], scratch: Path):
    """The packaged run's config, its paths pointed into scratch: the inference kernel resolves its task here."""
    run_dir = Path(run_dir)
    values = {"data_dir": str(scratch / "data"), "runs_dir": str(scratch / "runs"),
              "submissions_dir": str(scratch / "submissions"), "verbose": 0}
    if (run_dir / "competition.yaml").is_file():
        values["competition"] = str(run_dir / "competition.yaml")
    values.update(overrides)
    return config.load_config(run_dir / "config.yaml", values)


def load_package(run_dir: Path, task, overrides: dict[str, Any], scratch: Path):
    """(cfg, classes, prior) of a packaged run, the paths pointed into scratch; `task` is the run's task object,
    resolved by the inference kernel (its entry point) from the packaged config."""
    import numpy as np

    run_dir = Path(run_dir)
    cfg = package_config(run_dir, overrides, scratch)
    _require_task(cfg, task)
    classes_path = run_dir / "classes.json"
    if not classes_path.is_file():
        raise PodiumError(f"The packaged run {run_dir} has no classes.json.", expected="classes.json (the "
                          "model's class order), written by make kernel's packaging or the training kernel",
                          received=", ".join(sorted(p.name for p in run_dir.iterdir())),
                          fix="package the run again with make kernel (a kernel rendered by this podium)")
    table = json.loads(classes_path.read_text(encoding="utf-8"))
    classes = [str(c) for c in table["classes"]]
    for name in task.package_file_names:  # e.g. multi-label thresholds: read from the run folder
        if (run_dir / name).is_file():
            cfg.run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / name, cfg.run_dir / name)
    counts = np.asarray(table.get("counts") or [0] * len(classes), dtype="float64")
    prior = counts / counts.sum() if counts.sum() > 0 else np.eye(len(classes))[0]  # no counts: the first class
    return cfg, classes, prior.astype("float32")


def predict_from_package(run_dir: str | Path, task, competition_input: str | Path, out_csv: str | Path,
                         scratch: str | Path, overrides: dict[str, Any] | None = None, progress: bool = False,
                         log: Callable[[str], None] = print, clock: Callable[[], float] = time.perf_counter
                         ) -> InferenceSummary:
    """Index the test images found now, predict TTA views x packaged folds chunk by chunk, and write the
    submission validated against the sample found now. Writes only under `scratch` and `out_csv`;
    `task`: the run's task object, resolved by the inference kernel script from the packaged config."""
    run_dir, competition_input, scratch = Path(run_dir), Path(competition_input), Path(scratch)
    timings: dict[str, float] = {}
    started = clock()
    cfg, classes, prior = load_package(run_dir, task, dict(overrides or {}), scratch)
    spec = _spec(cfg)
    dataset.require_task(cfg, spec)
    checkpoints, test_dir = _package_inputs(run_dir, cfg, spec, competition_input)
    # read first: a broken sample stops here, before minutes of prediction
    sample = validate.read_competition_sample(competition_input / spec.sample_submission, spec, classes)
    timings["load package"] = clock() - started
    mark = clock()
    rows = dataset.test_rows(data_index.build_test_index(spec, competition_input, progress=progress, pixels_dir=scratch / "pixels"))
    timings["index"] = clock() - mark
    log(f"inference: {len(rows)} test images indexed in {test_dir} ({int((~rows['ok']).sum())} unreadable), "
        f"{len(sample)} rows in the sample submission; folds {list(cfg.folds)} x TTA {list(cfg.tta)}")
    stage: dict[str, float] = {}
    predictions = predict.predict_rows(cfg, task, rows, competition_input, scratch / "cache", checkpoints, scratch / "predictions",
                               progress=progress, timings=stage)
    timings.update(stage)
    mark = clock()
    written = predict.write_task_submission(cfg, task, spec, predictions, sample, Path(out_csv), classes, prior)
    timings["write"] = clock() - mark
    timings["total"] = clock() - started
    return InferenceSummary(submission=written.submission, run_id=run_dir.name, n_test=len(rows),
                            n_rows=written.n_rows, n_unreadable=written.n_unreadable,
                            unreadable_note=written.unreadable_note.replace("training class prior",
                                                                            "packaged training class prior"),
                            counts=written.counts, timings=timings)


def _package_inputs(run_dir: Path, cfg, spec, competition_input: Path) -> tuple[list[Path], Path]:
    """The packaged fold checkpoints and the competition's test folder (or pixels CSV), both checked to exist."""
    checkpoints = [run_dir / f"fold-{k}" / "best.keras" for k in cfg.folds]
    missing = [str(p) for p in checkpoints if not p.is_file()]
    if missing:
        raise PodiumError(f"The packaged run {run_dir} lacks fold checkpoints.", expected=", ".join(map(str, checkpoints)),
                          received=f"missing {', '.join(missing)}", fix="package the run again after make train")
    # layout pixels: the test images are rows of a CSV, converted into an array under scratch (the input is read-only)
    test_dir = competition_input / (spec.test_csv if spec.layout == "pixels" else spec.test_dir)
    if not (test_dir.is_file() if spec.layout == "pixels" else test_dir.is_dir()):
        present = ", ".join(sorted(p.name for p in competition_input.iterdir())[:8]) if competition_input.is_dir() \
            else "no such folder"
        raise PodiumError(f"The competition's test {'CSV' if spec.layout == 'pixels' else 'folder'} {test_dir} does "
                          f"not exist.",
                          expected=f"the unpacked competition files ({test_dir.name}"
                                   f"{'' if spec.layout == 'pixels' else '/'}, {spec.sample_submission})",
                          received=present, fix="attach the competition to the kernel (competition_sources)")
    return checkpoints, test_dir


def _spec(cfg):
    return competitions.load_competition(cfg.competition)


def timing_lines(summary: InferenceSummary) -> list[str]:
    """What a user reads to judge whether the hidden test set fits the competition's time limit."""
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.timings.items())
    return [f"inference: stages: {stages}",
            f"inference: {summary.n_test} images, {summary.images_per_second:.1f} images/s (decode + model); "
            f"an hour fits about {summary.images_per_second * 3600:,.0f} images at this rate"]


def describe_environment(env: Environment) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in env.versions.items())
    return f"environment: python {sys.version.split()[0]}, {versions}; keras backend {env.backend}; " \
           f"podium imported from {env.podium_file}"
