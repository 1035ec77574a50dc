"""Helpers shared by tests: real JPEG bytes from the embedded demo, the tiny demo run's settings, a simulated
kill, the submit log."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"


def real_demo_jpegs(count: int) -> list[bytes]:
    with zipfile.ZipFile(DEMO_DIR / "train.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".jpg"))[:count]
        return [zf.read(n) for n in names]


def mini_demo(demo_root: Path, root: Path, per_class: int, n_test: int):
    """(root, index) of the first `per_class` demo train images of each class and test images 1..n_test, copied
    to `root` (a folder a test may break) and indexed."""
    from podium.data.competitions import load_competition
    from podium.data.index import build_index
    from podium.tasks import get_task

    for class_dir in sorted((Path(demo_root) / "train").iterdir()):
        for source in sorted(class_dir.glob("*.jpg"))[:per_class]:
            target = root / "train" / class_dir.name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    (root / "test").mkdir()
    for n in range(1, n_test + 1):
        shutil.copy(Path(demo_root) / "test" / f"{n}.jpg", root / "test" / f"{n}.jpg")
    return root, build_index(load_competition("demo"), root, get_task("classification"))


def stop_after_epoch(epoch: int):
    """A Keras callback that interrupts fit() like a kill would, after `epoch` (0-based) ends."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def on_epoch_end(self, seen, logs=None):
            if seen == epoch:
                raise KeyboardInterrupt("simulated kill")

    return StopAfter()


def log_rows(target) -> list[dict]:
    """The rows of a submit target's submissions/log.csv."""
    with (target.submissions_dir / "log.csv").open() as handle:
        return list(csv.DictReader(handle))


TINY_DEMO = ("val_split=0.2", "folds=[0]", "backbone=tiny_cnn", "image_size=32", "batch_size=64", "lr=0.003",
             "verbose=0", "schedule=constant", "epochs=1", "tta=[identity]")


class TinyDemo:
    """The tiny demo run's settings in one place (tiny CNN, 32 px, one epoch, fold 0 of a 20% holdout: seconds
    per fit on 2 cores). A test names only what it changes; later overrides win."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def args(self, base, *more: str, data=None) -> list[str]:
        """`key=value` overrides for load_config or a `podium` verb; runs and submissions go under `base`."""
        return [f"data_dir={data or self.data_dir}", f"runs_dir={Path(base) / 'runs'}",
                f"submissions_dir={Path(base) / 'subs'}", *TINY_DEMO, *more]

    def cfg(self, base, *more: str, data=None):
        from podium.config import load_config

        return load_config(None, self.args(base, *more, data=data))

    def copy(self, cfg, base):
        """The finished run `cfg` (its runs and submissions folders) copied under `base`, for tests that write."""
        shutil.copytree(Path(cfg.runs_dir).parent, base, dirs_exist_ok=True)
        return dataclasses.replace(cfg, runs_dir=str(Path(base) / "runs"), submissions_dir=str(Path(base) / "subs"))


def make_data(competition: str, *args, **kwargs):
    """prepare_data as `make data` calls it: the task resolved from the spec, as the entry point does."""
    from podium.data.competitions import load_competition
    from podium.tasks import get_task
    from podium.workflow import prepare_data

    return prepare_data(competition, get_task(load_competition(competition).task), *args, **kwargs)


def spec_check(spec, source):
    """check_spec as `make spec` calls it: the task resolved from the spec, as the entry point does."""
    from podium.spec.check import check_spec
    from podium.tasks import get_task

    return check_spec(spec, get_task(spec.task), source)


def untrained_fold(cfg, num_classes: int, fold: int = 0):
    """A finished fold of the config's run holding an untrained model (best.keras, an empty metrics.json): what
    packaging and offline prediction need when the point is the path and the file forms, not the scores."""
    from podium.tasks import get_task

    fold_dir = cfg.run_dir / f"fold-{fold}"
    fold_dir.mkdir(parents=True)
    get_task(cfg.task).build_model(cfg, num_classes).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text("{}")
    return fold_dir


def run_under_jax(code: str, script: Path) -> dict:
    """`code` (dedented) written to `script` and run in a fresh Python under KERAS_BACKEND=jax on the CPU; the JSON
    object its last stdout line prints. Fails the test, with its stderr, when it does not exit 0."""
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
