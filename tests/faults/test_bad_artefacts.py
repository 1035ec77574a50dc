"""Fault class "artefacts read as truth without checking them" (issue 21, class 2), on real demo runs.

A blend, a pseudo-label teacher and an inference package read what training and prediction wrote. Each
such file now carries a record of what made it (podium.artefacts) and every reader goes through one checked
reader: a truncated or NaN file, predictions of test images since replaced, unfinished folds, a rank blend
read as probabilities are refused (or said, where allowed) naming the file and the command that remakes it.
Two tiny runs (tiny_cnn, 32 px, 1 epoch, 2 folds) are trained and predicted once for the module; each case
damages a copy of a run folder, so the cases stay independent."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.tasks import get_task
from podium import artefacts
from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from tests_support import TinyDemo

pytestmark = pytest.mark.slow


def _cfg(base, *more):
    """The tiny demo run on two folds, in this module's private data folder (one case edits its index)."""
    return TinyDemo(base / "data").cfg(base, "val_split=0", "n_folds=2", "folds=[0,1]", *more)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished, predicted runs of the demo in a private data folder (one case edits its index)."""
    from podium.workflow import predict_run, train_run
    from tests_support import make_data

    base = tmp_path_factory.mktemp("artefacts")
    make_data("demo", str(base / "data"))
    made = []
    for seed in (1, 2):
        cfg = _cfg(base, f"seed={seed}", f"name=r{seed}")
        train_run(cfg, get_task(cfg.task), progress=False)
        predict_run(cfg, get_task(cfg.task), progress=False)
        made.append(cfg)
    return base, made


def _copy(cfg, name):
    """A copy of a run folder under another run id (the blend and the teacher read run folders by name)."""
    target = Path(cfg.runs_dir) / name
    shutil.copytree(cfg.run_dir, target)
    return target


def _blend(base, *run_ids, more=()):
    return main(["blend", "--runs", *run_ids, "--runs-dir", str(base / "runs"), *more])


def _teacher(base, run_id):
    """pseudo_run=<run_id>, checked as `make train` checks it before any fold trains."""
    from podium.data.index import load_index
    from podium.runners.pseudo import check_source

    cfg = _cfg(base, "name=student", f"pseudo_run={run_id}", "pseudo_threshold=0.5")
    index = load_index(base / "data" / "demo" / "index.parquet")
    classes = json.loads(next(Path(cfg.runs_dir).glob("r1-*/data.json")).read_text())["classes"]
    return check_source(cfg, classes, index)


def _refused_both(base, r1, run_id, capsys, *words):
    """The blend and the pseudo-label teacher both refuse `run_id`'s predictions, naming the file and fix."""
    assert _blend(base, r1.run_id, run_id) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Fix:" in err and all(w in err for w in words), err
    with pytest.raises(PodiumError) as caught:
        _teacher(base, run_id)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_the_writers_stamp_what_they_hand_over(runs):
    base, (r1, _) = runs
    for name in ("test_predictions.npy", "fold-0/oof.parquet", "fold-1/oof.parquet"):
        record = artefacts.read_record(r1.run_dir / name)
        assert record is not None and record["finished"] is True, name
    record = artefacts.read_record(r1.run_dir / "test_predictions.npy")
    assert record["kind"] == "probabilities" and [f["fold"] for f in record["folds"]] == [0, 1]
    assert set(record["inputs"]) == {"fold-0/metrics.json", "fold-1/metrics.json"}
    assert set(record["companions"]) == {"test_ids.csv"} and "make predict" in record["remake"]


@pytest.mark.parametrize("cut", [1, 200])
def test_truncated_test_predictions_are_named_with_make_predict(runs, capsys, cut):
    base, (r1, r2) = runs
    folder = _copy(r2, f"cut-{cut}")
    path = folder / "test_predictions.npy"
    path.write_bytes(path.read_bytes()[:-cut])
    _refused_both(base, r1, folder.name, capsys, str(path), "make predict")


def test_a_truncated_oof_table_is_named_with_make_train(runs, capsys):
    base, (r1, r2) = runs
    folder = _copy(r2, "oof-cut")
    path = folder / "fold-1" / "oof.parquet"
    path.write_bytes(path.read_bytes()[:100])
    assert _blend(base, r1.run_id, folder.name) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "make train FORCE=1" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["test", "oof"])
def test_nan_predictions_are_refused_not_scored_as_class_zero(runs, capsys, where):
    """A diverged model writes NaN, stamped as it was written: the bytes are whole, the numbers are not."""
    base, (r1, r2) = runs
    folder = _copy(r2, f"nan-{where}")
    if where == "test":
        path = folder / "test_predictions.npy"
        values = np.load(path)
        values[3] = np.nan
        np.save(path, values)
        record = artefacts.read_record(path)
        artefacts.stamp(path, kind=record["kind"], images=record["images"], remake=record["remake"],
                        made_by="make predict", folds=record["folds"], companions=[folder / "test_ids.csv"])
        _refused_both(base, r1, folder.name, capsys, "NaN", str(path))
    else:
        path = folder / "fold-0" / "oof.parquet"
        oof = pd.read_parquet(path)
        column = next(c for c in oof.columns if c.startswith("prob_"))
        oof.loc[oof.index[:2], column] = np.nan
        oof.to_parquet(path, index=False)
        record = artefacts.read_record(path)
        artefacts.stamp(path, kind=record["kind"], images=record["images"], remake=record["remake"],
                        made_by="make train", folds=record["folds"])
        assert _blend(base, r1.run_id, folder.name) == 2
        err = capsys.readouterr().err
        assert "NaN or infinite values in 2 of" in err and str(path) in err


def test_predictions_of_replaced_test_images_are_refused(runs, capsys):
    """`make data FORCE=1` after the test images changed: the index's content hash of a test image differs.
    The runs' predictions are of the old pixels: neither blended nor taught as pseudo-labels."""
    from podium.data.index import load_index, save_index

    base, (r1, r2) = runs
    index_path = base / "data" / "demo" / "index.parquet"
    kept = index_path.read_bytes()
    index = load_index(index_path)
    first_test = index.index[index["split"] == "test"][0]
    index.loc[first_test, "hash"] = "0" * len(str(index.loc[first_test, "hash"]))
    save_index(index, index_path)
    try:
        _refused_both(base, r1, r2.run_id, capsys, "other images than the index holds now", "make predict")
    finally:
        index_path.write_bytes(kept)
    _teacher(base, r2.run_id)  # the same predictions, the images back as they were: accepted


def test_unfinished_folds_are_said_and_never_flow_on_silently(runs, capsys):
    """A killed fold (no metrics.json), predicted with allow_unfinished=true: the prediction says so, a blend
    and a teacher refuse it, an inference package names it (refused without allow_unfinished)."""
    from podium.kaggle.inference import package_notes, package_run
    from podium.workflow import predict_run

    base, (r1, _) = runs
    cfg = _cfg(base, "seed=1", "name=killed", "allow_unfinished=true")
    shutil.copytree(r1.run_dir, cfg.run_dir)
    (cfg.run_dir / "fold-1" / "metrics.json").unlink()
    summary = predict_run(cfg, get_task(cfg.task), progress=False)
    assert any("UNFINISHED fold 1" in n for n in summary.notes)
    assert artefacts.read_record(cfg.run_dir / "test_predictions.npy")["finished"] is False
    _refused_both(base, r1, cfg.run_id, capsys, "did not finish")
    folder = package_run(cfg, get_task(cfg.task), base / "package", "someone/killed-run")
    package = json.loads((folder / cfg.run_id / "package.json").read_text())
    assert package["unfinished_folds"] == [1]
    assert [f["finished"] for f in package["folds_used"]] == [True, False]
    assert package_notes(folder / cfg.run_id)[0].startswith("UNFINISHED: fold(s) [1]")
    with pytest.raises(PodiumError, match="did not finish"):
        package_run(dataclasses.replace(cfg, allow_unfinished=False), get_task(cfg.task), base / "package2",
                    "someone/killed-run")


def test_a_rank_blend_is_no_pseudo_label_teacher_and_a_blend_name_names_one_blend(runs, capsys):
    base, (r1, r2) = runs
    assert _blend(base, r1.run_id, r2.run_id, more=["--method", "rank", "--name", "ranked"]) == 0
    capsys.readouterr()
    ranked = next((base / "runs").glob("blend-ranked-*"))
    assert artefacts.read_record(ranked / "test_predictions.npy")["kind"] == "ranks"
    with pytest.raises(PodiumError, match="holds ranks, which cannot be read as probabilities"):
        _teacher(base, ranked.name)
    # the same name for another blend of these runs: refused, the first blend kept
    before = (ranked / "blend.yaml").read_text()
    assert _blend(base, r1.run_id, r2.run_id, more=["--method", "mean", "--name", "ranked"]) == 2
    assert "already names another blend" in capsys.readouterr().err
    assert (ranked / "blend.yaml").read_text() == before
    # the same blend again remakes it in place
    assert _blend(base, r2.run_id, r1.run_id, more=["--method", "rank", "--name", "ranked"]) == 0
    # a mean blend is a teacher; a run predicted again after it makes it stale
    assert _blend(base, r1.run_id, r2.run_id, more=["--method", "mean", "--name", "avg"]) == 0
    capsys.readouterr()
    avg = next((base / "runs").glob("blend-avg-*"))
    _teacher(base, avg.name)
    copy = _copy(r2, "repredicted")
    assert _blend(base, r1.run_id, copy.name, more=["--method", "mean", "--name", "avg2"]) == 0
    capsys.readouterr()
    avg2 = next((base / "runs").glob("blend-avg2-*"))
    np.save(copy / "test_predictions.npy", np.load(copy / "test_predictions.npy")[::-1].copy())
    with pytest.raises(PodiumError, match="changed since"):
        _teacher(base, avg2.name)


def test_a_later_folds_k_keeps_the_finished_runs_folds_in_its_config_and_cv(runs):
    from podium.workflow import train_run

    base, (r1, _) = runs
    whole = _cfg(base, "seed=1", "name=partial")
    shutil.copytree(r1.run_dir, whole.run_dir)
    before = json.loads((whole.run_dir / "metrics.json").read_text())
    assert [f["fold"] for f in before["folds"]] == [0, 1]
    only = dataclasses.replace(whole, folds=[1])
    summary = train_run(only, get_task(only.task), force=True, progress=False)  # fold 1 retrained on the same data
    assert [r.fold for r in summary.folds] == [0, 1]
    assert load_config(whole.run_dir / "config.yaml").folds == [0, 1]
    after = json.loads((whole.run_dir / "metrics.json").read_text())
    assert [f["fold"] for f in after["folds"]] == [0, 1]
    assert after["folds"][0] == before["folds"][0]  # fold 0 read back, not retrained
    assert any("fold(s) [0] finished earlier" in n for n in summary.notes)
