"""`make rehearse`: the demo's inference kernel run here as Kaggle would run it (offline, podium only from
the script, a renamed test set), scored against the demo's held-back labels."""

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from podium.tasks import get_task
from podium.cli.main import main
from podium.errors import PodiumError

ROOT = Path(__file__).resolve().parents[1]
HELD_BACK = Path(__file__).with_name("data") / "demo_test_labels.csv"


def _unshare_permitted() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-n", "true"]).returncode == 0


def test_rehearsal_refuses_to_run_with_network_unless_allowed(monkeypatch, tmp_path):
    from podium.kaggle.rehearse import _network_mode

    monkeypatch.setenv("PATH", str(tmp_path))  # no unshare to be found: as on a machine without it
    with pytest.raises(PodiumError, match="--allow-network"):
        _network_mode(allow_network=False)
    assert _network_mode(allow_network=True).startswith("NOT isolated (no unshare command)")


def test_rehearsal_refuses_a_training_kernel(tmp_path):
    from podium.config import load_config
    from podium.kaggle.rehearse import rehearse

    cfg = load_config(ROOT / "configs" / "demo.yaml")
    (tmp_path / "podium-kernel.json").write_text(json.dumps({"token": "t", "run_id": cfg.run_id}))
    with pytest.raises(PodiumError, match="training kernel"):
        rehearse(cfg, get_task(cfg.task), tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_permitted(), reason="`unshare -n` is not permitted here (needs root or user "
                                                      "namespaces); the rehearsal refuses to run with network")
def test_demo_inference_kernel_rehearsed_offline_on_renamed_test_set(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # kernels/ is written under the working directory, as `make kernel` does
    config = str(ROOT / "configs" / "demo.yaml")
    args = [f"data_dir={tmp_path / 'data'}", f"runs_dir={tmp_path / 'runs'}",
            f"submissions_dir={tmp_path / 'submissions'}", "verbose=0", "epochs=3", "folds=[0]"]
    assert main(["run", "--config", config, *args]) == 0  # trains and writes make predict's submission
    (tmp_path / "kernel.yaml").write_text("owner: tester\nmode: inference\naccelerator: none\n")
    kernel = ["--config", config, "--kernel", str(tmp_path / "kernel.yaml")]
    assert main(["kernel", *kernel, "--no-upload", *args]) == 0
    capsys.readouterr()

    assert main(["rehearse", *kernel, "--labels", str(HELD_BACK), *args]) == 0
    out = capsys.readouterr().out
    work = tmp_path / "kernels" / "podium-demo" / "rehearsal"
    summary = json.loads((work / "rehearsal.json").read_text())
    assert summary["ok"] and summary["returncode"] == 0
    assert summary["network"].startswith("none (unshare -n") and "network interfaces: lo\n" in summary_log(work)
    assert Path(summary["podium_file"]) == (work / "scratch" / "src" / "podium" / "__init__.py").resolve()

    submission = pd.read_csv(work / "working" / "submission.csv", dtype=str)
    sample = pd.read_csv(work / "input" / "demo" / "sample_submission.csv", dtype=str)
    assert len(submission) == 500 and submission["id"].str.startswith("rehearse-").all()
    assert submission["id"].tolist() == sample["id"].tolist() and summary["ids_match"] and not summary["problems"]

    # mapped back to the original ids: exactly what `make predict` wrote for the same run and TTA
    ids = pd.read_csv(work / "ids.csv", dtype=str)
    original = submission.merge(ids, on="id").drop(columns="id").rename(columns={"original_id": "id"})
    predicted = pd.read_csv(next((tmp_path / "submissions" / "demo").glob("*.csv")), dtype=str)
    assert original.set_index("id")["label"].sort_index().equals(predicted.set_index("id")["label"].sort_index())
    truth = pd.read_csv(HELD_BACK, dtype=str)
    accuracy = (original.merge(truth, on="id", suffixes=("", "_true")).eval("label == label_true")).mean()
    assert summary["accuracy"] == pytest.approx(accuracy)
    assert accuracy > 0.2, f"rehearsed demo accuracy {accuracy:.3f} is too close to chance (0.10)"
    assert f"accuracy against {HELD_BACK}: {accuracy:.4f}" in out
    assert summary["projection"]["hidden_images"] == 500 and summary["projection"]["projected_seconds"] > 0
    assert "500 hidden test images (the visible test set's size) would take about" in out
    print(f"rehearsal: wall {summary['wall_seconds']:.1f} s, accuracy {accuracy:.4f}, "
          f"{summary['images_per_second']:.0f} images/s")

    # the same run read as a training kernel's output (kernel_sources: runs/<run_id>/ under its slug)
    (tmp_path / "from-kernel.yaml").write_text("owner: tester\nmode: inference\naccelerator: none\n"
                                               "slug: podium-demo-infer\nrun_source: kernel\n"
                                               "run_kernel: tester/podium-demo\n")
    kernel = ["--config", config, "--kernel", str(tmp_path / "from-kernel.yaml")]
    assert main(["kernel", *kernel, *args]) == 0  # nothing to upload: no credentials needed
    assert main(["rehearse", *kernel, "--labels", str(HELD_BACK), *args]) == 0
    work = tmp_path / "kernels" / "podium-demo-infer" / "rehearsal"
    assert "podium-demo/runs/" in summary_log(work)
    assert json.loads((work / "rehearsal.json").read_text())["accuracy"] == pytest.approx(accuracy)


def summary_log(work: Path) -> str:
    return (work / "kernel.log").read_text()


# ---------------------------------------------------------------- held-back labels (issue 21, class 4)
TEST_IDS = {f"img_{i:03d}" for i in range(500)}


@pytest.fixture
def spec():
    from podium.data.competitions import load_competition

    return load_competition("demo")  # id,label


@pytest.mark.parametrize("content, said", [
    (None, "do not exist"),
    ("image,class\nimg_001,cat\n", "another header"),
    ("id\nimg_001\n", "another header"),
    ("id,label\nnot-a-test-id,cat\nzzz,dog\n", "No id of the held-back labels"),
    ("id,label\nimg_001,cat\nimg_001,dog\n", "name an id twice"),
    ("", "cannot be read"),
], ids=["missing", "other-header", "no-label-column", "no-matching-id", "duplicate-id", "empty-file"])
def test_held_back_labels_that_cannot_score_are_refused_before_the_script_runs(tmp_path, spec, content, said):
    from podium.kaggle.rehearse import read_labels

    path = tmp_path / "labels.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PodiumError, match=said) as err:
        read_labels(path, spec, TEST_IDS)
    assert str(path) in err.value.what and "id,label" in err.value.fix


def test_an_accuracy_on_a_handful_of_rows_says_how_many(tmp_path, spec):
    from podium.kaggle.rehearse import RehearsalSummary, accuracy_line, read_labels, score_against_labels

    path = tmp_path / "labels.csv"
    path.write_text("id,label\n" + "".join(f"img_{i:03d},cat\n" for i in range(5)) + "unknown,dog\n")
    truth = read_labels(path, spec, TEST_IDS)
    id_map = {f"rehearse-{i:06d}": f"img_{i:03d}" for i in range(500)}
    frame = pd.DataFrame({"id": list(id_map), "label": ["cat", "cat", "cat", "dog", "dog"] + ["cat"] * 495})
    accuracy, rows = score_against_labels(frame, id_map, truth, spec)
    assert (accuracy, rows) == (pytest.approx(0.6), 5)
    summary = RehearsalSummary(folder=tmp_path, returncode=0, wall_seconds=1.0, network="none", podium_file="",
                               inlined=True, n_test=500, accuracy=accuracy, accuracy_rows=rows)
    line = accuracy_line(summary, path)
    assert "0.6000 on 5 rows of 500 test images" in line and "too few" in line
    summary.accuracy_rows = 500
    assert accuracy_line(summary, path).endswith("0.6000 on 500 rows")


def test_the_rehearsal_extrapolates_to_the_hidden_test_set_and_warns_past_the_limit(tmp_path, spec):
    """index + decode + model grow with the images, the rest of the wall time does not; the spec's
    hidden_test_images and time_limit_hours (a code competition without one: 9 h, said to be assumed)."""
    import dataclasses

    from podium.kaggle.rehearse import RehearsalSummary, project_hidden_run, projection_lines

    summary = RehearsalSummary(folder=tmp_path, returncode=0, wall_seconds=15.0, network="none", podium_file="",
                               inlined=True, n_test=500, timings={"load package": 1.0, "index": 1.0, "decode": 2.0,
                                                                  "model": 2.0, "write": 0.5})
    plain = project_hidden_run(summary, spec)  # 5 s for 500 images, 10 s fixed; a csv competition: no limit
    assert plain["hidden_images"] == 500 and plain["projected_seconds"] == pytest.approx(15.0)
    assert plain["limit_seconds"] is None and plain["fits"] and not plain["warning"]
    hidden = dataclasses.replace(spec, hidden_test_images=2_000_000, time_limit_hours=2.0)
    big = project_hidden_run(summary, hidden)  # 0.01 s an image: 20,000 s + 10 s, over 2 h
    assert big["projected_seconds"] == pytest.approx(20_010.0) and not big["fits"]
    assert "2,000,000 hidden test images would take about 5.6 h" in big["warning"] and "2.0 h limit" in big["warning"]
    assert projection_lines(big)[-1].startswith("WARNING: ")
    code = project_hidden_run(summary, dataclasses.replace(spec, submission_kind="code", hidden_test_images=100_000))
    assert code["limit_seconds"] == 9 * 3600 and code["fits"] and code["limit_from"].startswith("assumed")
    assert project_hidden_run(dataclasses.replace(summary, timings={}), spec) == {}


@pytest.mark.parametrize("field, value", [("hidden_test_images", -1), ("hidden_test_images", 2.5),
                                          ("time_limit_hours", True), ("time_limit_hours", "9")])
def test_spec_time_fields_are_checked(tmp_path, field, value):
    from podium.data.competitions import load_competition

    path = tmp_path / "spec.yaml"
    path.write_text(f"slug: demo\n{field}: {json.dumps(value)}\n")
    with pytest.raises(PodiumError, match=field):
        load_competition(str(path))
