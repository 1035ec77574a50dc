"""make kernel / push / status / output, and the weights dataset, through the real client and the stand-in."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest

from kaggle_standin import Sleeps, kaggle_home, session, standin  # noqa: F401 (fixtures)
from podium.errors import PodiumError

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
def cfg(tmp_path):
    from podium.config import load_config

    return load_config(None, {"name": "demo", "competition": "cifar10", "runs_dir": str(tmp_path / "runs")})


def render(cfg, tmp_path, **spec_values):
    from podium.kernels import load_kernel_spec, render_kernel

    return render_kernel(cfg, load_kernel_spec(None, spec_values), owner="podium-tester",
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
    assert "train_run(cfg" in script and "predict_run(cfg" in script


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
    from podium.kernels import podium_source_zip

    target = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(podium_source_zip())) as zf:
        zf.extractall(target)
    code = ("import podium.competitions as c, podium.kernels; print(c.__file__); "
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
    assert 'WEIGHTS_FILE = "/kaggle/input/podium-demo-weights/b0.weights.h5"' in \
        (rendered.folder / "podium_kernel.py").read_text()
    dataset_meta = json.loads((rendered.weights_dataset / "dataset-metadata.json").read_text())
    assert dataset_meta["id"] == "podium-tester/podium-demo-weights"


def test_weights_dataset_is_created_then_versioned_only_when_changed(cfg, tmp_path, standin, session):
    from podium.kernel_runs import publish_weights

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
    assert publish_weights(session, rendered.weights_dataset) is None and standin.log == []
    weights.write_bytes(b"\x89HDF" + b"v" * 200)
    rendered = render(cfg, tmp_path, weights_file=str(weights))
    publish_weights(session, rendered.weights_dataset)
    assert [line.split("/")[-1] for line in standin.log] == [
        "GetDatasetStatus -> 200", "StartBlobUpload -> 200", "blob-1002 -> 200", "CreateDatasetVersion -> 200"]
    assert len(standin.datasets["podium-tester/podium-demo-weights"]) == 2


def push_and_wait(cfg, tmp_path, standin, session, outputs=None):
    from podium.kernel_runs import StatusPolicy, push, wait_for_kernel

    rendered = render(cfg, tmp_path)
    pushed = push(session, rendered.folder, clock=lambda: 0.0)
    kernel = standin.kernels[rendered.ref]
    kernel.outputs = outputs if outputs is not None else {
        "submission.csv": b"id,label\n1,cat\n", "runs/demo-x/fold-0/best.keras": b"PK\x03\x04model",
        "runs/demo-x/metrics.json": b'{"cv_mean": 0.8}', "runs/demo-x/plots/confusion.png": PNG,
        "podium-run.json": json.dumps({"token": rendered.token, "run_id": "demo-x", "cv_mean": 0.8}).encode()}
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
    assert (state.status, state.failure) == ("ERROR", "Your notebook hit an error")


def test_output_lands_in_runs_kernel_run(cfg, tmp_path, standin, session):
    from podium.kernel_runs import download_output

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
    from podium.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.kernels[rendered.ref].outputs[name] = data
    with pytest.raises(PodiumError, match="error page") as err:
        download_output(session, rendered.folder, cfg.runs_dir)
    assert name in str(err.value)
    assert not (tmp_path / "runs" / "podium-demo-v1").exists()


def test_a_404_answer_is_rejected_and_a_500_is_retried(cfg, tmp_path, standin, session):
    from podium.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.fail("GET /kernel-output/", status=500)
    download_output(session, rendered.folder, cfg.runs_dir)
    assert session.retry.sleep == [2.0]
    standin.fail("GET /kernel-output/", status=404, body="<html>Not Found</html>", content_type="text/html")
    with pytest.raises(PodiumError, match="HTTP 404"):
        download_output(session, rendered.folder, cfg.runs_dir)


def test_outputs_of_another_version_are_refused(cfg, tmp_path, standin, session):
    from podium.kernel_runs import download_output

    rendered, _, _, _ = push_and_wait(cfg, tmp_path, standin, session)
    standin.kernels[rendered.ref].outputs["podium-run.json"] = json.dumps({"token": "older"}).encode()
    with pytest.raises(PodiumError, match="another run"):
        download_output(session, rendered.folder, cfg.runs_dir)


def test_push_faults(cfg, tmp_path, standin, session):
    from podium.kaggle_api import OutcomeUnknown
    from podium.kernel_runs import push

    rendered = render(cfg, tmp_path)
    standin.fail("SaveKernel", reset="after")
    with pytest.raises(OutcomeUnknown, match="connection"):  # not resent blindly: it starts a GPU run
        push(session, rendered.folder)
    assert len(standin.kernels[rendered.ref].versions) == 1
    standin.fail("GetKernelSessionStatus", status=429, retry_after="3")
    from podium.kaggle_api import kernel_status

    assert kernel_status(session, rendered.ref)[0] == "QUEUED"
    assert session.retry.sleep == [3.0]
