"""The offline inference kernel of a code competition: its spec, the packaged run, and the rendered script
run on test files that changed after rendering, with an unreadable image and with missing packages."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_standin import kaggle_home, standin  # noqa: F401 (fixtures)
from podium.config import load_config
from podium.errors import PodiumError
from podium.kaggle.kernels import SCRIPT_NAME, load_kernel_spec, render_kernel
from podium.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def untrained_run(demo_data, tmp_path_factory):
    """A real (untrained) tiny_cnn checkpoint laid out as a finished fold 0 of the demo config."""
    from podium import tasks

    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data), "runs_dir": str(runs),
                                                        "folds": [0], "verbose": 0})
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 10).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text(json.dumps({"best_epoch": 1, "epochs_run": 1}))
    return cfg


def _inference_spec(**values):
    return load_kernel_spec(overrides={"owner": "tester", "mode": "inference", "accelerator": "none", **values})


# ------------------------------------------------------------------------------------------ the spec
def test_inference_spec_forces_internet_off_and_refuses_what_cannot_work_offline():
    assert _inference_spec().enable_internet is False  # KernelSpec's default (on) is turned off
    assert load_kernel_spec(overrides={"owner": "tester"}).mode == "train"  # today's kernels unchanged
    with pytest.raises(PodiumError, match="internet off"):
        _inference_spec(enable_internet=True)
    with pytest.raises(PodiumError, match="weights_file"):
        _inference_spec(weights_file="w.h5")
    with pytest.raises(PodiumError, match="run_kernel"):
        _inference_spec(run_source="kernel")
    with pytest.raises(PodiumError, match="Unknown kernel mode"):
        load_kernel_spec(overrides={"mode": "predict"})


def test_render_packages_the_run_as_a_dataset_and_attaches_it(untrained_run, demo_data, tmp_path):
    cfg = untrained_run
    rendered = render_kernel(cfg, get_task(cfg.task), _inference_spec(slug="podium-demo-infer"), owner="ignored",
                             out_root=tmp_path)
    meta = rendered.metadata
    assert meta["enable_internet"] is False and meta["competition_sources"] == ["demo"]
    assert meta["dataset_sources"] == ["tester/podium-demo-infer-run"] and meta["kernel_sources"] == []
    package = rendered.run_dataset / cfg.run_id
    dataset = json.loads((rendered.run_dataset / "dataset-metadata.json").read_text())
    assert dataset["id"] == "tester/podium-demo-infer-run" and dataset["licenses"] == [{"name": "CC0-1.0"}]
    classes = json.loads((package / "classes.json").read_text())
    index = pd.read_parquet(demo_data / "demo" / "index.parquet")
    assert classes["classes"] == sorted(index.loc[index["split"] == "train", "label"].unique())
    assert sum(classes["counts"]) == int(((index["split"] == "train") & index["ok"]).sum())
    checkpoint = package / "fold-0" / "best.keras"
    assert checkpoint.read_bytes() == (cfg.run_dir / "fold-0" / "best.keras").read_bytes()
    assert json.loads((package / "package.json").read_text())["keras"].startswith("3.")
    stamp = checkpoint.stat().st_mtime_ns, checkpoint.stat().st_ino
    render_kernel(cfg, get_task(cfg.task), _inference_spec(slug="podium-demo-infer"), owner="ignored",
                  out_root=tmp_path)
    assert (checkpoint.stat().st_mtime_ns, checkpoint.stat().st_ino) == stamp  # unchanged content: not rewritten

    from_kernel = render_kernel(cfg, get_task(cfg.task), _inference_spec(slug="podium-demo-infer2", run_source="kernel",
                                                     run_kernel="tester/podium-demo"), "x", tmp_path)
    assert from_kernel.metadata["kernel_sources"] == ["tester/podium-demo"] and from_kernel.run_dataset is None
    assert from_kernel.metadata["dataset_sources"] == []


def test_a_run_with_an_untrained_fold_is_not_packaged(untrained_run, tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.yaml", {**{k: getattr(untrained_run, k) for k in
                                                         ("data_dir", "runs_dir")}, "folds": [0, 1]})
    with pytest.raises(PodiumError, match="fold-1"):
        render_kernel(cfg, get_task(cfg.task), _inference_spec(), owner="x", out_root=tmp_path)


def test_find_run_prefers_the_run_id_and_refuses_ambiguity(tmp_path):
    from podium.kaggle.inference import find_run

    def run(path):
        (path / "fold-0").mkdir(parents=True)
        (path / "fold-0" / "best.keras").write_bytes(b"PK")
        (path / "config.yaml").write_text("name: x\n")
        return path

    only = run(tmp_path / "kernel-out" / "runs" / "other-123")
    assert find_run(tmp_path, "demo-abc") == only  # a training kernel's run id can differ: the only one
    named = run(tmp_path / "podium-demo-run" / "demo-abc")
    assert find_run(tmp_path, "demo-abc") == named
    run(tmp_path / "third" / "x-1")
    (tmp_path / "podium-demo-run" / "demo-abc" / "config.yaml").unlink()
    with pytest.raises(PodiumError, match="Several packaged runs"):
        find_run(tmp_path, "demo-abc")
    with pytest.raises(PodiumError, match="No packaged run"):
        find_run(tmp_path / "kernel-out", "demo-abc", depth=1)  # runs/other-123 is 2 levels down


# ------------------------------------------------------------------------------------- the script
def _kaggle_tree(demo_data: Path, root: Path, names: list[str]) -> Path:
    """/kaggle/input/demo with the given demo test images under new names, a sample for them."""
    competition = root / "input" / "demo"
    (competition / "test").mkdir(parents=True)
    source = sorted((demo_data / "demo" / "test").iterdir())
    for k, name in enumerate(names):
        shutil.copyfile(source[k % len(source)], competition / "test" / f"{name}.jpg")
    pd.DataFrame({"id": names, "label": "cat"}).to_csv(competition / "sample_submission.csv", index=False)
    return competition


def _run_script(folder: Path, root: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PODIUM_KAGGLE_INPUT": str(root / "input"), "PODIUM_KAGGLE_WORKING": str(root / "working"),
           "PODIUM_SCRATCH": str(root / "scratch"), **(extra_env or {})}
    return subprocess.run([sys.executable, str(folder / SCRIPT_NAME)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_script_indexes_the_test_files_it_finds_and_gives_an_unreadable_image_a_row(untrained_run, demo_data,
                                                                                     tmp_path):
    cfg = untrained_run
    rendered = render_kernel(cfg, get_task(cfg.task), _inference_spec(), owner="x", out_root=tmp_path / "kernels")
    # test files made AFTER rendering, with ids the demo never had, one of them not an image at all
    names = [f"hidden-{k:03d}" for k in range(37)] + ["broken"]
    competition = _kaggle_tree(demo_data, tmp_path, names)
    (competition / "test" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    shutil.copytree(rendered.run_dataset, tmp_path / "input" / "podium-demo-run")

    done = _run_script(rendered.folder, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    submission = pd.read_csv(tmp_path / "working" / "submission.csv", dtype=str)
    assert submission["id"].tolist() == names  # every file found at run time, in the sample's order
    classes = json.loads((rendered.run_dataset / cfg.run_id / "classes.json").read_text())["classes"]
    assert submission["label"].isin(classes).all()
    assert "38 test images indexed" in done.stdout and "(1 unreadable)" in done.stdout
    assert "1 unreadable test images got the packaged training class prior" in done.stdout
    assert f"podium imported from {(tmp_path / 'scratch' / 'src' / 'podium' / '__init__.py').resolve()}" in done.stdout
    assert "images/s" in done.stdout
    record = json.loads((tmp_path / "working" / "podium-run.json").read_text())
    assert record["token"] == rendered.token and record["n_test"] == 38 and record["n_unreadable"] == 1


@pytest.mark.parametrize("fake_init, says", [
    ("raise ImportError('no keras on this image')", "keras (ImportError: no keras on this image)"),
    ("__version__ = '2.15.0'", "keras 2.15.0 (needs >= 3.0)"),
])
def test_script_stops_early_naming_a_missing_or_old_keras(untrained_run, tmp_path, fake_init, says):
    rendered = render_kernel(untrained_run, get_task(untrained_run.task), _inference_spec(), owner="x",
                             out_root=tmp_path / "kernels")
    fake = tmp_path / "fake"
    (fake / "keras").mkdir(parents=True)
    (fake / "keras" / "__init__.py").write_text(fake_init + "\n")
    (tmp_path / "input").mkdir()  # nothing attached: the check must come first and stop the run

    done = _run_script(rendered.folder, tmp_path, {"PYTHONPATH": str(fake)})
    assert done.returncode != 0
    assert "lacks what podium's prediction needs" in done.stderr and says in done.stderr
    assert "competition data is not attached" not in done.stderr
    assert not (tmp_path / "working" / "submission.csv").exists()


def test_make_kernel_uploads_the_packaged_run_once_then_skips_it(untrained_run, tmp_path, monkeypatch, standin,
                                                                 kaggle_home, capsys):
    """The CLI path against the Kaggle stand-in: created the first time, nothing sent when unchanged."""
    from podium.cli.main import main

    monkeypatch.chdir(tmp_path)  # kernels/ is written under the working directory
    (tmp_path / "infer.yaml").write_text("mode: inference\naccelerator: none\n")  # owner: the credentials' user
    args = ["--config", str(ROOT / "configs" / "demo.yaml"), "--kernel", str(tmp_path / "infer.yaml"),
            f"data_dir={untrained_run.data_dir}", f"runs_dir={untrained_run.runs_dir}", "folds=[0]"]
    assert main(["kernel", *args]) == 0
    ref = f"{standin.username}/podium-demo-run"
    assert f"run dataset {ref} uploaded" in capsys.readouterr().out
    (version,) = standin.datasets[ref]
    assert f"{untrained_run.run_id}/fold-0/best.keras" in version["files"]
    assert f"{untrained_run.run_id}/classes.json" in version["files"]
    standin.clear_log()
    assert main(["kernel", *args]) == 0
    assert "run dataset unchanged, not uploaded" in capsys.readouterr().out
    # only asked whether Kaggle still has it (a dataset deleted there would be uploaded again)
    assert [line.split("/")[-1] for line in standin.log if "Dataset" in line or "Blob" in line] == [
        "GetDatasetStatus -> 200"]
    meta = json.loads((tmp_path / "kernels" / "podium-demo" / "kernel-metadata.json").read_text())
    assert meta["dataset_sources"] == [ref] and meta["enable_internet"] is False


@pytest.mark.parametrize("config, classes", [("shapes-segmentation", 1), ("shapes-localization", 2)])
def test_masks_and_boxes_go_through_the_same_package_and_writers(config, classes, tmp_path):
    """Segmentation and localization runs package and predict offline too (untrained models: the point is
    the path, a submission the task's validator accepts, with a row for every test image found)."""
    from podium import tasks
    from podium.kaggle.inference import package_run, predict_from_package
    from tests_support import make_data

    cfg = load_config(ROOT / "configs" / f"{config}.yaml", {"data_dir": str(tmp_path / "data"),
                                                            "runs_dir": str(tmp_path / "runs"), "verbose": 0})
    make_data(cfg.competition, cfg.data_dir)  # the generated competition: seeded files, written here
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, classes).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text("{}")
    package = package_run(cfg, get_task(cfg.task), tmp_path / "package", "tester/shapes-run") / cfg.run_id
    out = tmp_path / "submission.csv"
    summary = predict_from_package(package, get_task(cfg.task), cfg.data_root, out, tmp_path / "scratch",
                                   log=lambda line: None)
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    from podium.data.competitions import load_competition

    sample = pd.read_csv(cfg.data_root / load_competition(cfg.competition).sample_submission, dtype=str,
                         keep_default_na=False)
    assert summary.n_test == sample["ImageId"].nunique() == submission["ImageId"].nunique()
    assert list(submission.columns) == list(sample.columns)
    assert set(summary.timings) >= {"index", "decode", "model", "write", "total"}


def test_environment_check_names_every_missing_module_and_notes_a_newer_saving_keras(tmp_path):
    from podium.kaggle.inference import Environment, check_environment, version_notes

    with pytest.raises(PodiumError) as err:
        check_environment((("numpy", ""), ("podium_absent_module", ""), ("yaml", "99.0")))
    message = str(err.value)
    assert "podium_absent_module (ModuleNotFoundError" in message and "(needs >= 99.0)" in message
    assert "numpy (" not in message
    env = check_environment((("numpy", ""),))
    assert env.podium_file.endswith("podium/__init__.py") and "numpy" in env.versions

    (tmp_path / "package.json").write_text(json.dumps({"keras": "3.99.0", "backend": "jax"}))
    notes = version_notes(tmp_path, Environment({"keras": "3.15.1"}, "tensorflow", ""))
    assert "saved by keras 3.99.0" in notes[0] and "trained under the jax backend" in notes[1]
    assert version_notes(tmp_path, Environment({"keras": "3.99.2"}, "jax", "")) == []


def test_a_multilabel_package_carries_the_thresholds_make_predict_uses(tmp_path):
    """What the task's submission writer reads from the run folder (multi-label: thresholds chosen out of
    fold) travels in the package; the kernel predicts with them, not with a silent 0.5."""
    from podium import tasks
    from podium.kaggle.inference import package_run, predict_from_package
    from tests_support import make_data

    cfg = load_config(ROOT / "configs" / "shapes-multilabel.yaml", {
        "data_dir": str(tmp_path / "data"), "runs_dir": str(tmp_path / "runs"), "verbose": 0, "image_size": 32})
    make_data(cfg.competition, cfg.data_dir)
    fold_dir = cfg.run_dir / "fold-0"
    fold_dir.mkdir(parents=True)
    tasks.get_task(cfg.task).build_model(cfg, 3).save(fold_dir / "best.keras")
    (fold_dir / "metrics.json").write_text("{}")
    chosen = {"ellipse": 0.0, "rectangle": 0.0, "triangle": 0.0}  # every label passes: visible in each row
    (cfg.run_dir / "thresholds.json").write_text(json.dumps({"thresholds": chosen}))
    package = package_run(cfg, get_task(cfg.task), tmp_path / "package", "tester/shapes-run") / cfg.run_id
    assert json.loads((package / "thresholds.json").read_text())["thresholds"] == chosen
    out = tmp_path / "submission.csv"
    predict_from_package(package, get_task(cfg.task), cfg.data_root, out, tmp_path / "scratch", log=lambda line: None)
    submission = pd.read_csv(out, dtype=str, keep_default_na=False)
    label = [c for c in submission.columns if c != submission.columns[0]][0]
    assert set(submission[label]) == {"ellipse rectangle triangle"}
