"""Every benchmark still runs (issue 24: benchmarks/bench_training.py stopped with a NameError after a refactor and
nothing noticed). Each benchmarks/*.py runs as a user runs it, in its own process, with `--smoke --results <tmp>`:
tiny inputs (the embedded demo, generated data), seconds of work, every file it writes under <tmp>. A new script
is picked up by the glob. The shell scripts parse, and the two that train run on a tiny generated CIFAR-10
package in the Kaggle layout: the GPU check (benchmarks/gpu_cifar10.sh, on the CPU under JAX, as the GPU machine
runs it) and the CPU recipe (benchmarks/cpu_cifar10.sh with key=value overrides).
"""

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
# files in benchmarks/ that are imported by scripts rather than run: none today (bench_detection and
# bench_epoch_metric import epoch_timer and steady from bench_training, itself a script with its own smoke)
HELPERS: set[str] = set()
SCRIPTS = [path for path in sorted(BENCHMARKS.glob("*.py")) if path.name not in HELPERS]
# no TensorFlow, no training: about a second each. Every other script pays a TensorFlow import (~5 s of CPU)
# and most train a model, so they run with the slow tests (still in `make test` and CI).
FAST = {"bench_duplicates.py", "bench_tiles.py"}
# what a benchmark must never touch in smoke mode: the recorded results and the repository's own data and runs
GUARDED = ("benchmarks/results", "data", "runs", "submissions")
# benchmarks/*.py that `make bench` leaves out (the Makefile says why): they need the CIFAR-10 package, a GPU or a
# finished run, or they append a row per call
NOT_IN_MAKE_BENCH = {"gpu_cifar10.py", "transfer_cifar10.py", "tta_views.py", "cpu_nets.py"}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def run(command: list[str], env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """The command from the repository root, with the environment `make` sets and podium's source importable."""
    environment = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
                   **(env or {})}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)


def said(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if not line.startswith(("WARNING: All log messages", "I0000"))]
    return "\n".join(lines[-40:])


def snapshot() -> dict[str, int]:
    """Modification times of the guarded folders' entries, two levels deep (a new run, data set or result
    file shows), and of every file in benchmarks/results."""
    seen = {}
    for name in GUARDED:
        top = ROOT / name
        entries = [top, *top.iterdir(), *(p for d in top.iterdir() if d.is_dir() for p in d.iterdir())] \
            if top.is_dir() else []
        if name == "benchmarks/results":
            entries += list(top.rglob("*"))
        seen.update({str(p): p.stat().st_mtime_ns for p in entries if p.exists()})
    return seen


def result_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


@pytest.mark.parametrize("script", [pytest.param(path, id=path.name, marks=() if path.name in FAST else pytest.mark.slow)
                                    for path in SCRIPTS])
def test_every_benchmark_runs_in_smoke_mode(script, tmp_path):
    results = tmp_path / "results"
    before = snapshot()
    done = run([sys.executable, str(script), "--smoke", "--results", str(results)])
    assert done.returncode == 0, said(done)
    assert result_files(results), f"{script.name} --smoke wrote no result file in --results\n{said(done)}"
    assert snapshot() == before, f"{script.name} --smoke wrote outside --results"


def test_the_glob_finds_the_scripts():
    """The parametrization above is over a glob: an empty or shrunken one would pass silently."""
    names = {path.name for path in SCRIPTS}
    assert {"bench_pipeline.py", "bench_training.py", "gpu_cifar10.py", "transfer_cifar10.py"} <= names
    assert FAST <= names and HELPERS <= {path.name for path in BENCHMARKS.glob("*.py")}


def test_make_bench_runs_every_self_contained_benchmark():
    """A new benchmark joins `make bench`, or the list above with the Makefile's reason."""
    recipe, inside = [], False
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("bench:"):
            inside = True
        elif inside and line.startswith("\t"):
            recipe.append(line)
        elif inside:
            break
    in_make = set(re.findall(r"benchmarks/(\w+\.py)", "\n".join(recipe)))
    assert in_make == {path.name for path in SCRIPTS} - NOT_IN_MAKE_BENCH


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("*.sh")), ids=lambda path: path.name)
def test_every_shell_script_parses(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ---- the shell scripts that train, on a tiny generated package ------------------------------------------------
def kaggle_package(folder: Path, per_class: int = 6, test: int = 15) -> Path:
    """CIFAR-10 in the Kaggle layout: train.zip (train/<class>/<n>.jpg), test.zip (test/<id>.jpg) and
    sample_submission.csv (id,label); 32 px JPEGs, one colour a class under noise."""
    rng = np.random.default_rng(0)
    colours = rng.uniform(0, 255, (len(CLASSES), 3))

    def jpeg(colour) -> bytes:
        buffer = io.BytesIO()
        pixels = np.clip(colour + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "train.zip", "w") as zf:
        for k, name in enumerate(CLASSES):
            for i in range(per_class):
                zf.writestr(f"train/{name}/{k * per_class + i}.jpg", jpeg(colours[k]))
    with zipfile.ZipFile(folder / "test.zip", "w") as zf:
        for i in range(1, test + 1):
            zf.writestr(f"test/{i}.jpg", jpeg(colours[i % len(CLASSES)]))
    (folder / "sample_submission.csv").write_text("id,label\n" + "".join(f"{i},cat\n" for i in range(1, test + 1)))
    return folder


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_under_jax(tmp_path):
    """benchmarks/gpu_cifar10.sh as the GPU machine runs it (KERAS_BACKEND=jax, TensorFlow never imported) with
    --smoke: tiny_cnn, 1 epoch, the bare-fit comparison and the submission, on a Kaggle-layout package."""
    pytest.importorskip("jax")
    package, out = kaggle_package(tmp_path / "package"), tmp_path / "out"
    before = snapshot()
    done = run(["bash", "benchmarks/gpu_cifar10.sh", "--smoke"],
               env={"PY": sys.executable, "OUT": str(out), "PACKAGE": str(package)})
    assert done.returncode == 0, said(done)
    report = json.loads((out / "gpu_cifar10.json").read_text())
    (only,) = report["runs"]
    assert report["backend"] == "jax" and only["tensorflow_loaded"] is False
    assert report["n_test"] == 15 and only["submission_rows"] == 15 and "bare_fit" in only
    assert (out / "cifar10-fast-submission.csv").is_file() and (out / "log.txt").is_file()
    assert snapshot() == before


@pytest.mark.slow
def test_the_cpu_recipe_script_runs_with_overrides(tmp_path):
    """benchmarks/cpu_cifar10.sh on a tiny package: the recipe's own net, stem and time budget, shrunk to one epoch
    by key=value overrides; RESULTS and WORK keep its table, data and runs out of the repository."""
    podium = Path(sys.executable).with_name("podium")
    if not podium.is_file():
        pytest.skip("no podium command beside this Python (pip install -e .)")
    package, results, work = kaggle_package(tmp_path / "package"), tmp_path / "results", tmp_path / "work"
    before = snapshot()
    done = run(["bash", "benchmarks/cpu_cifar10.sh", str(package), "epochs=1", "batch_size=16", "warmup_epochs=0",
                "val_split=0.2", "tta=[identity]"],
               env={"PY": sys.executable, "PODIUM": str(podium), "RESULTS": str(results), "WORK": str(work)})
    assert done.returncode == 0, said(done)
    row = (results / "cpu-cifar10.md").read_text().splitlines()[-1]
    assert "epochs=1" in row and "| airbench_m | 1 |" in row
    assert any(name.startswith("tta-views-") for name in result_files(results))
    assert snapshot() == before


@pytest.mark.slow
def test_the_blend_script_runs_on_a_tiny_package(tmp_path):
    """benchmarks/blend_cifar10.sh end to end at 1 epoch: three runs, their blend, the pseudo-label run and its
    blend, and the table it reads back from their metrics.json (the keys a refactor could rename)."""
    podium = Path(sys.executable).with_name("podium")
    if not podium.is_file():
        pytest.skip("no podium command beside this Python (pip install -e .)")
    package, results, work = kaggle_package(tmp_path / "package"), tmp_path / "results", tmp_path / "work"
    before = snapshot()
    done = run(["bash", "benchmarks/blend_cifar10.sh", str(package)],
               env={"PY": sys.executable, "PODIUM": str(podium), "RESULTS": str(results), "WORK": str(work),
                    "EPOCHS": "1"})
    assert done.returncode == 0, said(done)
    table = (results / "blend-cifar10.md").read_text()
    assert table.count("| `blend-") == 4 and "**Blend `blend-abc-" in table and "**Blend `blend-abc-pseudo-" in table
    assert "Pseudo-labels (arm P): {" in table
    assert snapshot() == before
