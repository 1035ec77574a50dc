"""make kernel / push / status / output, and the weights dataset, through the real client and the stand-in."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kaggle_standin import Sleeps, kaggle_home, session, standin  # noqa: F401 (fixtures)
from podium.errors import PodiumError
from podium.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

STATUS_200 = "POST /api/v1/datasets.DatasetApiService/GetDatasetStatus -> 200"  # "do you still have it?"


@pytest.fixture
def cfg(tmp_path):
    from podium.config import load_config

    return load_config(None, {"name": "demo", "competition": "cifar10", "runs_dir": str(tmp_path / "runs")})


def render(cfg, tmp_path, **spec_values):
    from podium.kaggle.kernels import load_kernel_spec, render_kernel

    return render_kernel(cfg, get_task(cfg.task), load_kernel_spec(None, spec_values), owner="podium-tester",
                         out_root=tmp_path / "kernels")


def test_render_writes_metadata_the_client_accepts_and_a_script(cfg, tmp_path):
    rendered = render(cfg, tmp_path, accelerator="NvidiaTeslaP100", dataset_sources=["someone/extra-data"])
    meta = json.loads((rendered.folder / "kernel-metadata.json").read_text())
    assert rendered.folder == tmp_path / "kernels" / "podium-demo"
    assert meta == {"id": "podium-tester/podium-demo", "title": "podium demo", "code_file": "podium_kernel.py",
                    "language": "python", "kernel_type": "script", "is_private": True, "enable_gpu": True,
                    "enable_tpu": False, "enable_internet": True, "dataset_sources": ["someone/extra-data"],
                    "competition_sources": ["cifar10"], "kernel_sources": [], "model_sources": [],
                    "machine_shape": "NvidiaTeslaP100"}
    script = (rendered.folder / "podium_kernel.py").read_text()
    compile(script, "podium_kernel.py", "exec")
    assert rendered.token in script and "/kaggle/working" in script and "pip install" not in script
    assert '"job": "training_kernel"' in script  # the whole job, as `podium run` runs it (workflow.run_all)


def test_tpu_and_no_accelerator(cfg, tmp_path):
    tpu = render(cfg, tmp_path, accelerator="TPU").metadata
    assert (tpu["machine_shape"], tpu["enable_tpu"], tpu["enable_gpu"]) == ("TpuV6E8", True, False)
    cpu = render(cfg, tmp_path, accelerator="none").metadata
    assert "machine_shape" not in cpu and not cpu["enable_gpu"]
    with pytest.raises(PodiumError, match="NvidiaTeslaT4"):
        render(cfg, tmp_path, accelerator="K80")
    with pytest.raises(PodiumError, match="did you mean 'accelerator'"):
        render(cfg, tmp_path, acclerator="TPU")


def test_the_inlined_podium_imports_alone(cfg, tmp_path):
    """The code shipped in the script is complete: podium and its competition specs import from it alone."""
    from podium.kaggle.kernels import podium_source_zip

    target = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(podium_source_zip())) as zf:
        zf.extractall(target)
    code = ("import podium.data.competitions as c, podium.kaggle.kernels; print(c.__file__); "
            "print(c.load_competition('journey-springfield').slug)")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == "journey-springfield"
    assert podium_source_zip() == podium_source_zip()  # deterministic: same tree, same script


def test_internet_off_needs_weights_from_a_dataset(cfg, tmp_path):
    cfg.weights = "imagenet"
    with pytest.raises(PodiumError, match="without internet"):
        render(cfg, tmp_path, enable_internet=False)
    weights = tmp_path / "b0.weights.h5"
    weights.write_bytes(b"\x89HDF" + b"w" * 100)
    rendered = render(cfg, tmp_path, enable_internet=False, weights_file=str(weights))
    meta = rendered.metadata
    assert meta["enable_internet"] is False
    assert meta["dataset_sources"] == ["podium-tester/podium-demo-weights"]
    assert '"weights_file": "/kaggle/input/podium-demo-weights/b0.weights.h5"' in \
        (rendered.folder / "podium_kernel.py").read_text()
    dataset_meta = json.loads((rendered.weights_dataset / "dataset-metadata.json").read_text())
    assert dataset_meta["id"] == "podium-tester/podium-demo-weights"


def test_weights_dataset_is_created_then_versioned_only_when_changed(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_weights

    weights = tmp_path / "b0.weights.h5"
    weights.write_bytes(b"\x89HDF" + b"w" * 100)
    rendered = render(cfg, tmp_path, weights_file=str(weights))
    assert publish_weights(session, rendered.weights_dataset) == "podium-tester/podium-demo-weights"
    assert [line.split("/")[-1] for line in standin.log] == [
        "DatasetApiService/GetDatasetStatus -> 404".split("/")[-1],  # is it there? no: create
        "DatasetApiService/GetDatasetStatus -> 404".split("/")[-1],  # the client's own check in create
        "StartBlobUpload -> 200", "blob-1001 -> 200", "CreateDataset -> 200"]
    (version1,) = standin.datasets["podium-tester/podium-demo-weights"]
    assert list(version1["files"].values()) == [weights.read_bytes()]
    standin.clear_log()
    # unchanged: only Kaggle is asked whether it still has the dataset
    assert publish_weights(session, rendered.weights_dataset) is None and standin.log == [STATUS_200]
    standin.clear_log()
    weights.write_bytes(b"\x89HDF" + b"v" * 200)
    rendered = render(cfg, tmp_path, weights_file=str(weights))
    publish_weights(session, rendered.weights_dataset)
    assert [line.split("/")[-1] for line in standin.log] == [
        "GetDatasetStatus -> 200", "StartBlobUpload -> 200", "blob-1002 -> 200", "CreateDatasetVersion -> 200"]
    assert len(standin.datasets["podium-tester/podium-demo-weights"]) == 2


def push_and_wait(cfg, tmp_path, standin, session, outputs=None):
    from podium.kaggle.kernel_runs import StatusPolicy, push, wait_for_kernel

    rendered = render(cfg, tmp_path)
    pushed = push(session, rendered.folder, clock=lambda: 0.0)
    kernel = standin.kernels[rendered.ref]
    kernel.outputs = outputs if outputs is not None else {
        "submission.csv": b"id,label\n1,cat\n", "runs/demo-x/fold-0/best.keras": b"PK\x03\x04model",
        "runs/demo-x/metrics.json": b'{"cv_mean": 0.8}', "runs/demo-x/plots/confusion.png": PNG,
        "podium-run.json": json.dumps({"token": pushed["token"], "run_id": "demo-x", "cv_mean": 0.8}).encode()}
    kernel.log = "epoch 1 done"
    policy = StatusPolicy(interval=1, factor=2, max_interval=4, stale_grace=1000, sleep=Sleeps(),
                          clock=lambda: 0.0)
    return rendered, pushed, wait_for_kernel(session, rendered.folder, policy), policy


def test_push_then_status_waits_with_backoff(cfg, tmp_path, standin, session):
    rendered, pushed, state, policy = push_and_wait(cfg, tmp_path, standin, session)
    assert (pushed["ref"], pushed["version"]) == ("podium-tester/podium-demo", 1)
    sent = standin.kernels[rendered.ref].versions[0]
    assert sent["text"] == (rendered.folder / "podium_kernel.py").read_text()
    assert sent["competitionDataSources"] == ["cifar10"] and sent["machineShape"] == "NvidiaTeslaT4"
    assert (state.status, state.finished, state.history) == ("COMPLETE", True, ["QUEUED", "RUNNING", "COMPLETE"])
    assert policy.sleep == [1, 2]


def test_an_older_finished_version_is_not_taken_for_the_new_run(cfg, tmp_path, standin, session):
    push_and_wait(cfg, tmp_path, standin, session)
    standin.clear_log()
    rendered, pushed, state, _ = push_and_wait(cfg, tmp_path, standin, session)
    assert pushed["version"] == 2
    assert state.history == ["COMPLETE (earlier version)", "QUEUED", "RUNNING", "COMPLETE"]
    assert len(standin.requests_named("GetKernelSessionStatus")) == 4


def test_a_failed_run_reports_kaggles_message(cfg, tmp_path, standin, session):
    standin.default_kernel_plan = ["RUNNING", "ERROR"]
    _, _, state, _ = push_and_wait(cfg, tmp_path, standin, session)
    assert (state.status, state.failure, state.failed) == ("ERROR", "Your notebook hit an error", True)


def test_output_lands_in_runs_kernel_run(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.clear_log()
    summary = download_output(session, rendered.folder, cfg.runs_dir)
    assert summary.run_dir == tmp_path / "runs" / "podium-demo-v1"
    assert (summary.run_dir / "runs/demo-x/fold-0/best.keras").read_bytes() == b"PK\x03\x04model"
    assert (summary.run_dir / "kernel.log").read_text() == "epoch 1 done"
    assert summary.run_record["run_id"] == "demo-x"
    assert standin.log[0] == "POST /api/v1/kernels.KernelsApiService/ListKernelSessionOutput -> 200"
    assert len(standin.requests_named("GET /kernel-output/")) == 5


@pytest.mark.parametrize("name, data", [
    ("submission.csv", b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"),
    ("runs/demo-x/plots/confusion.png", b'{"code": 403, "message": "Forbidden"}'),
    ("runs/demo-x/metrics.json", b'{"code": 404, "message": "Not found"}'),
])
def test_error_pages_saved_as_files_are_rejected(cfg, tmp_path, standin, session, name, data):
    from podium.kaggle.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.kernels[rendered.ref].outputs[name] = data
    with pytest.raises(PodiumError, match="error page") as err:
        download_output(session, rendered.folder, cfg.runs_dir)
    assert name in str(err.value)
    assert not (tmp_path / "runs" / "podium-demo-v1").exists()


def test_a_404_answer_is_rejected_and_a_500_is_retried(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.fail("GET /kernel-output/", status=500)
    download_output(session, rendered.folder, cfg.runs_dir)
    assert session.retry.sleep == [2.0]
    standin.fail("GET /kernel-output/", status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(PodiumError, match="HTTP 404"):
        download_output(session, rendered.folder, cfg.runs_dir)


def test_outputs_of_another_version_are_refused(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.kernels[rendered.ref].outputs["podium-run.json"] = json.dumps({"token": "older"}).encode()
    with pytest.raises(PodiumError, match="another run"):
        download_output(session, rendered.folder, cfg.runs_dir)


def test_a_429_on_status_waits_retry_after(cfg, tmp_path, standin, session):
    from podium.kaggle.client import kernel_status
    from podium.kaggle.kernel_runs import push

    rendered = render(cfg, tmp_path)
    push(session, rendered.folder)
    standin.fail("GetKernelSessionStatus", status=429, retry_after="3")
    assert kernel_status(session, rendered.ref)[0] == "QUEUED"
    assert session.retry.sleep == [3.0]


def reconcile_policy():
    from podium.kaggle.kernel_runs import ReconcilePolicy

    return ReconcilePolicy(sleep=Sleeps(), clock=lambda: 0.0)


def test_a_push_whose_answer_is_lost_is_found_and_adopted(cfg, tmp_path, standin, session):
    """SaveKernel acted, then the connection reset: the version is found by its token; no second run."""
    from podium.kaggle.kernel_runs import push, read_push

    rendered = render(cfg, tmp_path)
    standin.fail("SaveKernel", reset="after")
    state = push(session, rendered.folder, policy=reconcile_policy())
    assert standin.log == ["POST /api/v1/kernels.KernelsApiService/SaveKernel -> 200 handled, then RESET",
                           "POST /api/v1/kernels.KernelsApiService/GetKernel -> 200"]
    assert (state["status"], state["version"], state["adopted"]) == ("PUSHED", 1, True)
    assert read_push(rendered.folder) == state and len(standin.kernels[rendered.ref].versions) == 1
    assert state["token"] in standin.kernels[rendered.ref].versions[0]["text"]


def test_a_lost_push_is_reconciled_by_the_next_push_or_status_never_resent(cfg, tmp_path, standin, session):
    """The answer is lost and the network stays down while podium looks: push.json says OUTCOME_UNKNOWN
    (written before sending), the error advises nothing that starts a second run, and the next make push
    adopts the version instead of sending again."""
    from podium.kaggle.kernel_runs import StatusPolicy, push, read_push, wait_for_kernel

    rendered = render(cfg, tmp_path)
    standin.fail("SaveKernel", reset="after")
    standin.fail("GetKernel", reset="before", times=5)  # every attempt of the first look fails too
    with pytest.raises(PodiumError, match="got no answer") as err:
        push(session, rendered.folder, policy=reconcile_policy())
    assert "looks for this push" in str(err.value) and "check the network and run" not in str(err.value)
    unknown = read_push(rendered.folder)
    assert (unknown["status"], unknown["version"]) == ("OUTCOME_UNKNOWN", None)
    standin.clear_log()
    state = push(session, rendered.folder, policy=reconcile_policy())  # make push again
    assert standin.log == ["POST /api/v1/kernels.KernelsApiService/GetKernel -> 200"]  # no SaveKernel
    assert (state["version"], state["token"], state["adopted"]) == (1, unknown["token"], True)
    assert len(standin.kernels[rendered.ref].versions) == 1
    # make status after a lost push adopts it the same way, then polls
    standin.fail("SaveKernel", reset="after")
    standin.fail("GetKernel", reset="before", times=5)
    with pytest.raises(PodiumError):
        push(session, rendered.folder, policy=reconcile_policy())
    final = wait_for_kernel(session, rendered.folder, StatusPolicy(interval=1, sleep=Sleeps(), clock=lambda: 0.0),
                            reconcile=reconcile_policy())
    assert (final.version, final.status) == (2, "COMPLETE") and len(standin.kernels[rendered.ref].versions) == 2


def test_a_push_that_never_arrived_is_sent_again_only_after_looking(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import StatusPolicy, push, read_push, wait_for_kernel

    rendered = render(cfg, tmp_path)
    standin.fail("SaveKernel", reset="before")  # dropped before Kaggle saw it
    policy = reconcile_policy()
    with pytest.raises(PodiumError, match="got no answer"):
        push(session, rendered.folder, policy=policy)
    assert policy.sleep == [5.0, 15.0, 30.0]  # a late version gets its time to appear before podium gives up
    assert standin.requests_named("GetKernel -> 404") and rendered.ref not in standin.kernels
    lost_token = read_push(rendered.folder)["token"]
    with pytest.raises(PodiumError, match="Kaggle shows no version carrying its token") as err:
        wait_for_kernel(session, rendered.folder, StatusPolicy(sleep=Sleeps(), clock=lambda: 0.0),
                        reconcile=reconcile_policy())
    assert "make push" in str(err.value)
    standin.clear_log()
    late = reconcile_policy()
    late.clock = lambda: 1000.0  # long after the lost push: one look is enough
    state = push(session, rendered.folder, policy=late)
    assert [line.split("/")[-1] for line in standin.log] == ["GetKernel -> 404", "SaveKernel -> 200"]
    assert late.sleep == [] and state["version"] == 1 and state["token"] != lost_token


def test_session_timeout_reaches_save_kernel(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import push

    rendered = render(cfg, tmp_path, timeout_seconds=5400)
    assert json.loads((rendered.folder / "podium-kernel.json").read_text())["timeout_seconds"] == 5400
    assert push(session, rendered.folder)["timeout_seconds"] == 5400
    assert standin.kernels[rendered.ref].versions[-1]["sessionTimeoutSeconds"] == 5400
    push(session, render(cfg, tmp_path).folder)  # 0: Kaggle's default, the field is not sent
    assert "sessionTimeoutSeconds" not in standin.kernels[rendered.ref].versions[-1]


def test_every_push_carries_a_fresh_token_and_older_outputs_are_refused(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import StatusPolicy, download_output, push, wait_for_kernel

    rendered, first, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    older_outputs = dict(standin.kernels[rendered.ref].outputs)
    second = push(session, rendered.folder, clock=lambda: 0.0)  # no re-render in between
    assert first["token"] != second["token"] and second["version"] == 2
    texts = [v["text"] for v in standin.kernels[rendered.ref].versions]
    assert f'RUN_TOKEN = "{first["token"]}"' in texts[0] and f'RUN_TOKEN = "{second["token"]}"' in texts[1]
    assert json.loads((rendered.folder / "podium-kernel.json").read_text())["token"] == second["token"]
    wait_for_kernel(session, rendered.folder, StatusPolicy(interval=1, sleep=Sleeps(), clock=lambda: 0.0))
    standin.kernels[rendered.ref].outputs = older_outputs  # Kaggle still serves version 1's files
    with pytest.raises(PodiumError, match="another run") as err:
        download_output(session, rendered.folder, cfg.runs_dir)
    assert second["token"] in str(err.value) and first["token"] in str(err.value)


def cli_args(tmp_path):
    kernel_yaml = tmp_path / "kernel.yaml"
    kernel_yaml.write_text("owner: podium-tester\naccelerator: NvidiaTeslaT4\n")
    exp = ["--config", str(REPO / "configs" / "demo.yaml"), f"runs_dir={tmp_path}/runs"]
    return exp, ["--kernel", str(kernel_yaml)]


def test_a_failed_run_fails_status_and_output_which_still_fetch_the_log(tmp_path, standin, kaggle_home, capsys):
    from podium.cli.main import main

    exp, kernel = cli_args(tmp_path)
    standin.default_kernel_plan = ["RUNNING", "ERROR"]
    assert main(["kernel", *exp, *kernel, "--no-upload"]) == 0
    assert main(["push", *exp, *kernel]) == 0
    ref = "podium-tester/podium-demo"
    standin.kernels[ref].log = "Traceback: ValueError: no images found\n"
    standin.kernels[ref].outputs = {"runs/demo/metrics.json": b"{}"}
    standin.clear_log()
    assert main(["status", *exp, *kernel, "--poll-interval", "0.001"]) == 2
    printed = capsys.readouterr()
    assert "ended ERROR" in printed.err and "Your notebook hit an error" in printed.err and "make output" in printed.err
    assert standin.log == ["POST /api/v1/kernels.KernelsApiService/GetKernelSessionStatus -> 200"] * 2
    assert main(["output", *exp, *kernel]) == 2
    printed = capsys.readouterr()
    assert "ended ERROR" in printed.err and "kernel.log" in printed.err
    failed = tmp_path / "runs" / "podium-demo-v1-failed"
    assert (failed / "kernel.log").read_text() == "Traceback: ValueError: no images found\n"
    assert (failed / "runs/demo/metrics.json").is_file() and not (tmp_path / "runs" / "podium-demo-v1").exists()
    standin.default_kernel_plan = ["RUNNING", "CANCEL_ACKNOWLEDGED"]
    standin.fail("SaveKernel", reset="after")
    assert main(["push", *exp, *kernel]) == 0  # the answer is lost; the version is found, not sent again
    assert "nothing was sent again" in capsys.readouterr().out and len(standin.kernels[ref].versions) == 2
    assert main(["status", *exp, *kernel, "--poll-interval", "0.001"]) == 2
    assert "ended CANCEL_ACKNOWLEDGED" in capsys.readouterr().err


def test_kernel_sources_are_checked_before_pushing(cfg, tmp_path, standin, session):
    """A training kernel's output used directly as an input (kernel_sources), without a round trip; a missing
    source, or one whose run has not completed, is refused before anything is sent."""
    from podium.kaggle.kernel_runs import StatusPolicy, push, wait_for_kernel

    training = render(cfg, tmp_path)
    push(session, training.folder)
    cfg.name = "demo-infer"
    inference = render(cfg, tmp_path)
    meta_path = inference.folder / "kernel-metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "kernel_sources": ["podium-tester/no-such-kernel"]}))
    standin.clear_log()
    with pytest.raises(PodiumError, match="kernel source .* does not exist") as err:
        push(session, inference.folder)
    assert "podium-tester/no-such-kernel" in str(err.value) and "nothing was pushed" in str(err.value)
    assert standin.log == ["POST /api/v1/kernels.KernelsApiService/GetKernel -> 404"]
    meta_path.write_text(json.dumps({**meta, "kernel_sources": [training.ref]}))
    with pytest.raises(PodiumError, match="no completed run") as err:  # training still queued
        push(session, inference.folder)
    assert "QUEUED" in str(err.value) and not standin.requests_named("SaveKernel")
    assert not (inference.folder / "push.json").exists()
    wait_for_kernel(session, training.folder, StatusPolicy(interval=1, sleep=Sleeps(), clock=lambda: 0.0))
    standin.clear_log()
    state = push(session, inference.folder)
    assert [line.split("/")[-1] for line in standin.log] == ["GetKernel -> 200", "GetKernelSessionStatus -> 200",
                                                             "SaveKernel -> 200"]
    assert standin.kernels[state["ref"]].versions[0]["kernelDataSources"] == [training.ref]


def test_sources_kaggle_still_drops_are_recorded_with_the_started_version(cfg, tmp_path, standin, session):
    from podium.kaggle.kernel_runs import push, read_push

    rendered = render(cfg, tmp_path)
    answer = {"ref": rendered.ref, "url": "https://kaggle.example/code/x", "versionNumber": 4,
              "invalidDatasetSources": ["someone/gone-data"]}  # scripted: what Kaggle answers in that case
    standin.fail("SaveKernel", status=200, body=json.dumps(answer))
    with pytest.raises(PodiumError, match="started podium-tester/podium-demo version 4 without") as err:
        push(session, rendered.folder)
    assert "someone/gone-data" in str(err.value) and "stop that run on https://kaggle.example/code/x" in str(err.value)
    recorded = read_push(rendered.folder)  # the run exists: make status / output can still follow it
    assert (recorded["version"], recorded["status"], recorded["invalid_sources"]) == (4, "PUSHED",
                                                                                       ["someone/gone-data"])


def test_the_standin_drops_invalid_kernel_sources_but_starts_the_version(cfg, tmp_path, standin, session):
    """What Kaggle does (kaggle-cli issue 433), and why podium checks first; push_kernel reports them."""
    from podium.kaggle.client import push_kernel

    rendered = render(cfg, tmp_path)
    meta_path = rendered.folder / "kernel-metadata.json"
    meta_path.write_text(json.dumps({**rendered.metadata, "kernel_sources": ["podium-tester/gone-kernel"]}))
    result = push_kernel(session, rendered.folder)
    assert result["invalid_sources"] == ["podium-tester/gone-kernel"] and result["version"] == 1
    assert standin.kernels[rendered.ref].versions[0]["kernelDataSources"] == []


def run_dataset(tmp_path, ref="podium-tester/podium-demo-run"):
    """A trained run laid out as H3's inference kernel reads it: <run_id>/fold-k/best.keras, config, classes."""
    folder = tmp_path / "run-dataset"
    for fold in (0, 1):
        (folder / "demo-x" / f"fold-{fold}").mkdir(parents=True, exist_ok=True)
        (folder / "demo-x" / f"fold-{fold}" / "best.keras").write_bytes(b"PK\x03\x04weights" + bytes([fold]) * 64)
    (folder / "demo-x" / "config.json").write_text('{"name": "demo"}')
    (folder / "classes.json").write_text('["cat", "dog"]')
    (folder / "dataset-metadata.json").write_text(json.dumps(
        {"id": ref, "title": "podium demo run", "licenses": [{"name": "CC0-1.0"}]}))
    return folder


def test_publish_dataset_creates_skips_then_versions_a_folder_tree(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import content_digest, publish_dataset

    folder = run_dataset(tmp_path)
    assert publish_dataset(session, folder, "podium run demo-x") == "podium-tester/podium-demo-run"
    assert [line.split("/")[-1] for line in standin.log] == [
        "GetDatasetStatus -> 404", "GetDatasetStatus -> 404",
        "StartBlobUpload -> 200", "blob-1001 -> 200", "StartBlobUpload -> 200", "blob-1002 -> 200",
        "CreateDataset -> 200"]
    (version1,) = standin.datasets["podium-tester/podium-demo-run"]
    assert sorted(version1["files"]) == ["classes.json", "demo-x/config.json", "demo-x/fold-0/best.keras",
                                         "demo-x/fold-1/best.keras"]  # the subfolder went up zipped, unpacked
    assert version1["files"]["demo-x/fold-1/best.keras"] == (folder / "demo-x/fold-1/best.keras").read_bytes()
    standin.clear_log()
    (folder / "demo-x" / "config.json").touch()  # a new mtime, same content: still unchanged
    assert publish_dataset(session, folder, "podium run demo-x") is None and standin.log == [STATUS_200]
    standin.clear_log()
    before = content_digest(folder)
    (folder / "demo-x" / "fold-1" / "best.keras").write_bytes(b"PK\x03\x04retrained" + b"\1" * 64)
    assert content_digest(folder) != before
    assert publish_dataset(session, folder, "podium run demo-x") == "podium-tester/podium-demo-run"
    assert [line.split("/")[-1] for line in standin.log] == [
        "GetDatasetStatus -> 200", "StartBlobUpload -> 200", "blob-1003 -> 200", "StartBlobUpload -> 200",
        "blob-1004 -> 200", "CreateDatasetVersion -> 200"]
    versions = standin.datasets["podium-tester/podium-demo-run"]
    assert len(versions) == 2 and versions[1]["notes"] == f"podium run demo-x (content {content_digest(folder)[:12]})"
    assert versions[1]["files"]["demo-x/fold-1/best.keras"].startswith(b"PK\x03\x04retrained")


def test_content_digest_is_the_content(tmp_path):
    from podium.kaggle.kernel_runs import content_digest

    a, b = run_dataset(tmp_path / "a"), run_dataset(tmp_path / "b")
    assert content_digest(a) == content_digest(b)  # same content elsewhere, other mtimes
    (b / "demo-x" / "fold-0" / "best.keras").rename(b / "demo-x" / "fold-0" / "last.keras")
    assert content_digest(a) != content_digest(b)  # same bytes under another name
    (b / "dataset-metadata.json").unlink()
    (b / "dataset-metadata.json").write_text("{}")  # metadata is not content
    (b / "demo-x" / "fold-0" / "last.keras").rename(b / "demo-x" / "fold-0" / "best.keras")
    assert content_digest(a) == content_digest(b)


def test_a_dataset_create_whose_answer_is_lost_is_adopted(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = run_dataset(tmp_path)
    standin.fail("CreateDataset", reset="after")
    assert publish_dataset(session, folder, "podium run demo-x") == "podium-tester/podium-demo-run"
    assert [line.split("/")[-1] for line in standin.log][-2:] == [  # never re-sent: Kaggle is asked, it has it
        "CreateDataset -> 200 handled, then RESET", "GetDatasetStatus -> 200"]
    assert len(standin.datasets["podium-tester/podium-demo-run"]) == 1 and not standin.requests_named("Version")
    standin.clear_log()
    assert publish_dataset(session, folder, "podium run demo-x") is None and standin.log == [STATUS_200]


def test_a_training_kernels_session_becomes_its_budget_unless_the_config_sets_one(cfg, tmp_path):
    """The spec's timeout_seconds (else Kaggle's default session for the accelerator) less the margin reaches the
    script as its session budget; a config with its own time_budget keeps it (0 sent), and the run id stays."""
    from podium.kaggle.kernels import split_settings_block
    from podium.training.time_budget import kernel_budget_seconds

    def budget(rendered) -> float:
        namespace: dict = {}
        exec("import json\n" + split_settings_block((rendered.folder / "podium_kernel.py").read_text())[1], namespace)
        recorded = json.loads((rendered.folder / "podium-kernel.json").read_text())
        assert recorded["session_budget_seconds"] == namespace["SETTINGS"]["session_budget_seconds"]
        assert recorded["run_id"] == cfg.run_id or recorded["run_id"] == own.run_id
        return namespace["SETTINGS"]["session_budget_seconds"]

    own = dataclasses.replace(cfg, time_budget=30.0)
    assert budget(render(cfg, tmp_path, timeout_seconds=7200)) == pytest.approx(7200 - 600)  # the 10-minute floor
    assert budget(render(cfg, tmp_path / "default")) == pytest.approx(12 * 3600 * 0.95)  # a T4: 12 h, 5% kept
    assert budget(render(cfg, tmp_path / "tpu", accelerator="TPU")) == kernel_budget_seconds(0, "TPU")
    assert budget(render(own, tmp_path / "own", timeout_seconds=7200)) == 0.0
