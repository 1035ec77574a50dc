"""Issue 21, class 8: an outcome is unknown until Kaggle is asked (on every page), one writer per submission,
and every message names what Kaggle said. Through the real kaggle client against the stand-in.

(a) the submissions list is paged: a submission further down is found, a pending score on page 2 arrives;
(b) an answer that cannot be read after Kaggle acted (cut JSON, an HTML 200, no reference) is an unknown
    outcome: Kaggle is asked before anything is sent again;
(c) two `make submit` of one submission at once: one sends, the other is refused and sends nothing;
(d) a code competition's pushed version of another run (or of the same run retrained) is not submitted;
(e) a dataset Kaggle no longer has is uploaded again, and a push with a missing dataset source is refused;
(f) a Retry-After over the cap is refused on every call (datasets and uploads included), a 429 on SaveKernel
    is retried like any call;
(g) a 401/403 while reading a kernel's status blames the credentials, with Kaggle's words, not a slug.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kaggle_standin import Kernel, Sleeps, Submission, kaggle_home, poll, session, standin  # noqa: F401
from test_kaggle_submit import run  # noqa: F401 (fixture: a finished demo run with a valid CSV)
from tests_support import log_rows
from podium.errors import PodiumError
from podium.tasks import get_task

API = "POST /api/v1/competitions.CompetitionApiService/"


def others(standin, slug: str, count: int, status: str = "COMPLETE") -> None:
    """`count` submissions of other runs, newer than everything so far (Kaggle lists newest first)."""
    for _ in range(count):
        standin.submissions.setdefault(slug, []).append(Submission(
            ref=standin.new_id(), description="another run [podium 0ther]", file_name="x.csv", content=b"",
            date="2024-01-01T00:00:00.000Z", polls_until_scored=0, public_score="0.5", status=status))


def creates(standin, name: str = "CreateSubmission") -> list[str]:
    return standin.requests_named(f"/{name} ")


# ----------------------------------------------------------------------------------- (a) every page
@pytest.mark.parametrize("page", [1, 7, 20])
def test_an_earlier_attempt_further_down_the_list_is_found_not_sent_again(run, standin, session, poll, page):
    """A `sending` row (a crash after CreateSubmission) whose submission sits below 45 newer ones."""
    from podium.kaggle.submit import SubmissionLog, submit

    standin.submissions_page = page
    token = "a1b2c3d4e5f6"
    message = f"{run.run_id} cfg {run.config_hash} cv 0.8125 [podium {token}]"
    standin.submissions["demo"] = [Submission(ref=4242, description=message, file_name="s.csv", content=b"",
                                              date="2024-01-01T00:00:00.000Z", polls_until_scored=0, public_score="0.77")]
    others(standin, "demo", 45)
    from podium.io import file_sha256

    SubmissionLog(run.submissions_dir / "log.csv").append(
        {"competition": "demo", "file": str(run.file), "message": message, "status": "sending",
         "run_id": run.run_id, "token": token, "sha256": file_sha256(run.file)})
    result = submit(run, get_task(run.competition.task), session, poll)
    assert result.adopted and result.ref == 4242 and result.public_score == "0.77"
    assert creates(standin) == [] and len(standin.submissions["demo"]) == 46
    assert len(standin.pages_served) >= -(-46 // page)  # the look read down to it, page by page
    assert [r["status"] for r in log_rows(run)] == ["scored"]


def test_a_pending_score_on_page_two_arrives(run, standin, session, poll):
    from podium.kaggle.client import KaggleSession, RetryPolicy
    from podium.kaggle.submit import submit

    first = submit(run, get_task(run.competition.task), session, poll, wait=False)
    assert first.status == "submitted"
    others(standin, "demo", 25)  # the team submits 25 more before Kaggle scores ours: it is on page 2
    resumed = submit(run, get_task(run.competition.task), KaggleSession(retry=RetryPolicy(sleep=Sleeps())), poll)
    assert (resumed.status, resumed.public_score) == ("scored", "0.91250") and len(creates(standin)) == 1
    assert any(start >= 20 for start, _ in standin.pages_served)  # page 2 was read
    assert log_rows(run)[0]["status"] == "scored"


def test_a_page_that_fails_once_is_read_again(run, standin, session, poll):
    from podium.kaggle.submit import submit

    others(standin, "demo", 30)
    standin.fail("ListSubmissions", status=503, after=1)  # page 2 of the first look
    result = submit(run, get_task(run.competition.task), session, poll)
    assert result.status == "scored" and len(creates(standin)) == 1 and session.retry.sleep == [2.0]


def test_every_page_is_read_by_list_submissions(standin, session):
    from podium.kaggle.client import list_submissions

    standin.add_competition("demo", {})
    others(standin, "demo", 53)
    standin.submissions_page = 10
    rows = list_submissions(session, "demo")
    assert len(rows) == 53 and len({r["ref"] for r in rows}) == 53 and len(standin.pages_served) == 6


# ------------------------------------------------------------------- (b) unreadable answers after acting
GARBLED = {
    "cut-json": dict(body='{"message": "Successfully submitted to the comp', content_type="application/json"),
    "html-200": dict(body="<!DOCTYPE html><html><body>Kaggle is down for maintenance</body></html>",
                     content_type="text/html"),
    "empty-json": dict(body="{}", content_type="application/json"),
    "a-list": dict(body="[]", content_type="application/json"),
}


@pytest.mark.parametrize("garble", GARBLED.values(), ids=GARBLED)
def test_an_unreadable_answer_to_create_is_reconciled_not_resent(run, standin, session, poll, garble):
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", garble=True, **garble)
    result = submit(run, get_task(run.competition.task), session, poll)
    assert result.adopted and len(standin.submissions["demo"]) == 1 and len(creates(standin)) == 1
    assert any("could not be read" in e or "named no submission" in e for e in result.events)
    assert [r["status"] for r in log_rows(run)] == ["scored"]


@pytest.mark.parametrize("garble", [GARBLED["cut-json"], GARBLED["html-200"]], ids=["cut-json", "html-200"])
def test_the_next_submit_asks_kaggle_before_sending_again(run, standin, session, poll, garble):
    """The answer cannot be read and the list cannot be read either: the row stays `sending` (never `failed`),
    and the next `make submit` finds the submission and sends nothing."""
    from podium.kaggle.client import KaggleSession, RetryPolicy
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", garble=True, **garble)
    standin.fail("ListSubmissions", status=502, times=999, after=1)
    with pytest.raises(PodiumError, match="could not be checked") as err:
        submit(run, get_task(run.competition.task), session, poll)
    assert "HTTP 502" in str(err.value)
    (row,) = log_rows(run)
    assert row["status"] == "sending" and row["note"].startswith("outcome unknown")
    standin.faults.clear()
    again = submit(run, get_task(run.competition.task), KaggleSession(retry=RetryPolicy(sleep=Sleeps())), poll)
    assert again.adopted and len(standin.submissions["demo"]) == 1 and len(creates(standin)) == 1


def test_an_unreadable_list_is_read_again(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("ListSubmissions", garble=True, **GARBLED["html-200"])
    result = submit(run, get_task(run.competition.task), session, poll)
    assert result.status == "scored" and len(creates(standin)) == 1 and session.retry.sleep == [2.0]


def test_an_unreadable_answer_to_a_code_submission_is_reconciled(standin, session, poll, tmp_path):
    from podium.kaggle.submit import KernelVersion, SubmitTarget, submit
    from podium.data.competitions import load_competition

    (tmp_path / "code.yaml").write_text("slug: tiny-code\ntitle: code\nsubmission_kind: code\n")
    standin.add_competition("tiny-code", {})
    standin.kernels["podium-tester/k-code"] = Kernel(ref="podium-tester/k-code", versions=[{}])
    target = SubmitTarget(run_id="r-1", competition=load_competition(str(tmp_path / "code.yaml")),
                          file=tmp_path / "push.json", cv=None, config_hash="1", data_root=tmp_path,
                          submissions_dir=tmp_path / "submissions",
                          kernel=KernelVersion("podium-tester/k-code", 1, "COMPLETE"))
    standin.fail("CreateCodeSubmission", garble=True, **GARBLED["html-200"])
    result = submit(target, get_task(target.competition.task), session, poll)
    assert result.adopted and len(standin.submissions["tiny-code"]) == 1
    assert len(creates(standin, "CreateCodeSubmission")) == 1


def render_train_kernel(tmp_path, **spec):
    from podium.config import load_config
    from podium.kaggle.kernels import load_kernel_spec, render_kernel

    cfg = load_config(None, {"name": "demo", "competition": "cifar10", "runs_dir": str(tmp_path / "runs")})
    return cfg, render_kernel(cfg, get_task(cfg.task), load_kernel_spec(None, spec), owner="podium-tester",
                              out_root=tmp_path / "k")


@pytest.mark.parametrize("garble", [GARBLED["cut-json"], GARBLED["html-200"], GARBLED["empty-json"]],
                         ids=["cut-json", "html-200", "empty-json"])
def test_an_unreadable_answer_to_a_push_is_adopted_not_a_second_gpu_run(tmp_path, standin, session, garble):
    from podium.kaggle.kernel_runs import ReconcilePolicy, push

    _, rendered = render_train_kernel(tmp_path)
    standin.fail("SaveKernel", garble=True, **garble)
    state = push(session, rendered.folder, policy=ReconcilePolicy(sleep=Sleeps(), clock=lambda: 0.0))
    assert state["adopted"] and state["version"] == 1 and state["status"] == "PUSHED"
    assert len(standin.kernels[rendered.ref].versions) == 1 and len(standin.requests_named("SaveKernel")) == 1


def test_a_push_whose_answer_is_unreadable_is_looked_for_by_the_next_push(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import OUTCOME_UNKNOWN, ReconcilePolicy, push

    _, rendered = render_train_kernel(tmp_path)
    standin.fail("SaveKernel", garble=True, **GARBLED["html-200"])
    standin.fail("GetKernel", status=502, times=999)
    with pytest.raises(PodiumError, match="got no answer"):
        push(session, rendered.folder, policy=ReconcilePolicy(waits=(), sleep=Sleeps(), clock=lambda: 0.0))
    assert json.loads((rendered.folder / "push.json").read_text())["status"] == OUTCOME_UNKNOWN
    standin.faults.clear()
    state = push(session, rendered.folder, policy=ReconcilePolicy(sleep=Sleeps(), clock=lambda: 0.0))
    assert state["adopted"] and len(standin.kernels[rendered.ref].versions) == 1
    assert len(standin.requests_named("SaveKernel")) == 1


def test_an_unreadable_answer_to_a_dataset_create_is_adopted(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = dataset_folder(tmp_path)
    standin.fail("CreateDataset", garble=True, **GARBLED["html-200"])
    assert publish_dataset(session, folder, "notes") == "podium-tester/some-data"
    assert len(standin.datasets["podium-tester/some-data"]) == 1 and len(standin.requests_named("CreateDataset")) == 1


# ------------------------------------------------------------------------- (c) one writer per submission
def test_two_submits_at_once_send_once(run, standin, session, poll):
    """The first holds the submission while its CreateSubmission is in flight; the second is refused, naming
    the holder, and sends nothing; after the first, a second `make submit` adopts it from the log."""
    from podium.kaggle.client import KaggleSession, RetryPolicy
    from podium.kaggle.submit import submit

    reached, release = threading.Event(), threading.Event()
    standin.fail("CreateSubmission", hold=(reached, release))
    results: list = []
    task = get_task(run.competition.task)
    first = threading.Thread(target=lambda: results.append(submit(run, task, session, poll, wait=False)))
    first.start()
    try:
        assert reached.wait(30)
        second = KaggleSession(retry=RetryPolicy(sleep=Sleeps()))
        with pytest.raises(PodiumError, match="in use by another podium process") as err:
            submit(run, get_task(run.competition.task), second, poll)
        assert "make submit" in str(err.value) and f"pid {__import__('os').getpid()}" in str(err.value)
    finally:
        release.set()
        first.join(30)
    assert results[0].status == "submitted" and len(creates(standin)) == 1
    later = submit(run, get_task(run.competition.task), KaggleSession(retry=RetryPolicy(sleep=Sleeps())), poll)
    assert later.adopted and later.status == "scored" and len(creates(standin)) == 1
    assert len(log_rows(run)) == 1


def test_a_submit_held_by_another_process_is_refused_before_anything(run, standin, session, poll):
    from podium.io import file_sha256
    from podium.kaggle.submit import submission_lock

    with submission_lock(run, file_sha256(run.file)) as path:
        lock_path = str(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from podium.training.run_lock import exclusive_lock\n"
         f"with exclusive_lock({lock_path!r}, subject='s', action='make submit', fix='f'):\n"
         "    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from podium.kaggle.submit import submit

        with pytest.raises(PodiumError, match=f"pid {holder.pid}"):
            submit(run, get_task(run.competition.task), session, poll)
        assert standin.log == [] and not (run.submissions_dir / "log.csv").exists()
    finally:
        holder.communicate("")
    assert submit(run, get_task(run.competition.task), session, poll).status == "scored"  # released: it goes through


def test_submits_of_different_files_do_not_block_each_other(run, tmp_path):
    import dataclasses

    from podium.kaggle.submit import submission_lock

    other = dataclasses.replace(run, file=tmp_path / "other.csv")
    with submission_lock(run, "a"), submission_lock(other, "b"), submission_lock(run, "c"):
        pass  # another file, or the same path with other content: another submission


# --------------------------------------------------------------------- (d) the pushed run is the run now
def code_setup(tmp_path, standin, **record):
    from podium.config import load_config
    from podium.io import write_json

    spec = tmp_path / "tiny-code.yaml"
    spec.write_text("slug: tiny-code\ntitle: a code competition\nsubmission_kind: code\n")
    cfg = load_config(None, {"name": "codedemo", "competition": str(spec), "runs_dir": str(tmp_path / "runs")})
    standin.add_competition("tiny-code", {})
    standin.kernels["podium-tester/podium-codedemo"] = Kernel(ref="podium-tester/podium-codedemo", versions=[{}])
    folder = tmp_path / "kernels" / "podium-codedemo"
    state = {"ref": "podium-tester/podium-codedemo", "version": 1, "token": "t", "pushed_at": 0.0,
             "seen_active": True, "status": "COMPLETE", "run_id": cfg.run_id, "config_hash": cfg.config_hash(),
             "run_digest": "", "settings": None, **record}
    write_json(folder / "push.json", {k: v for k, v in state.items() if v is not ...})
    return cfg, folder


def test_the_pushed_run_passes(tmp_path, standin, kaggle_home):
    from podium.kaggle.submit import choose_target

    cfg, folder = code_setup(tmp_path, standin)
    assert choose_target(cfg, folder).kernel.version == 1


def test_a_changed_config_is_not_submitted_as_the_pushed_version(tmp_path, standin, kaggle_home):
    from podium.config import load_config
    from podium.kaggle.submit import choose_target

    cfg, folder = code_setup(tmp_path, standin)
    changed = load_config(None, {**{k: getattr(cfg, k) for k in ("name", "competition", "runs_dir")}, "epochs": 77})
    with pytest.raises(PodiumError, match="not submitted under that run's name") as err:
        choose_target(changed, folder)
    assert cfg.run_id in err.value.received and changed.run_id in err.value.received
    assert "make push" in err.value.fix and standin.log == []


def test_a_retrained_run_is_not_submitted_as_the_pushed_version(tmp_path, standin, kaggle_home):
    from podium.kaggle.kernels import checkpoints_digest
    from podium.kaggle.submit import choose_target

    from podium.config import load_config

    spec = tmp_path / "tiny-code.yaml"
    spec.write_text("slug: tiny-code\ntitle: c\nsubmission_kind: code\n")
    cfg = load_config(None, {"name": "codedemo", "competition": str(spec), "runs_dir": str(tmp_path / "runs")})
    for fold in (0, 1):
        (cfg.run_dir / f"fold-{fold}").mkdir(parents=True)
        (cfg.run_dir / f"fold-{fold}" / "best.keras").write_bytes(b"PK" + bytes([fold]) * 50)
    cfg, folder = code_setup(tmp_path, standin, run_digest=checkpoints_digest(cfg.run_dir))
    assert choose_target(cfg, folder).kernel.version == 1  # unchanged: submitted
    (cfg.run_dir / "fold-1" / "best.keras").write_bytes(b"PK" + b"\x09" * 50)  # retrained, same config
    with pytest.raises(PodiumError, match="not submitted") as err:
        choose_target(cfg, folder)
    assert "checkpoints" in err.value.received and "retrained" in err.value.received


def test_changed_inference_settings_are_not_submitted_as_the_pushed_version(tmp_path, standin, kaggle_home):
    from podium.kaggle.inference import INFERENCE_KEYS
    from podium.kaggle.submit import choose_target

    cfg, folder = code_setup(tmp_path, standin)
    settings = json.loads(json.dumps({key: getattr(cfg, key) for key in INFERENCE_KEYS}))
    cfg, folder = code_setup(tmp_path, standin, settings={**settings, "tta": ["hflip", "vflip"]})
    with pytest.raises(PodiumError, match="not submitted") as err:
        choose_target(cfg, folder)
    assert "tta" in err.value.received


def test_a_push_record_without_the_run_is_not_trusted(tmp_path, standin, kaggle_home):
    from podium.kaggle.submit import choose_target

    cfg, folder = code_setup(tmp_path, standin, run_id=..., config_hash=...)
    with pytest.raises(PodiumError, match="not submitted") as err:
        choose_target(cfg, folder)
    assert "does not say which run was pushed" in err.value.received


def test_push_records_the_run_it_pushes(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import push

    cfg, rendered = render_train_kernel(tmp_path)
    state = push(session, rendered.folder, clock=lambda: 0.0)
    saved = json.loads((rendered.folder / "push.json").read_text())
    assert (state["run_id"], saved["run_id"], saved["config_hash"]) == (cfg.run_id, cfg.run_id, cfg.config_hash())


# ------------------------------------------------------------------------------ (e) datasets Kaggle lost
def dataset_folder(tmp_path) -> Path:
    folder = tmp_path / "data-folder"
    folder.mkdir()
    (folder / "weights.h5").write_bytes(b"\x89HDF" + b"w" * 40)
    (folder / "dataset-metadata.json").write_text(json.dumps({"id": "podium-tester/some-data", "title": "some data",
                                                              "licenses": [{"name": "CC0-1.0"}]}))
    return folder


def test_a_dataset_deleted_on_kaggle_is_uploaded_again(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = dataset_folder(tmp_path)
    assert publish_dataset(session, folder, "n") == "podium-tester/some-data"
    assert publish_dataset(session, folder, "n") is None  # Kaggle has it: skipped
    del standin.datasets["podium-tester/some-data"]  # deleted on Kaggle; the local record still says uploaded
    assert publish_dataset(session, folder, "n") == "podium-tester/some-data"
    assert "podium-tester/some-data" in standin.datasets and len(standin.requests_named("/CreateDataset ")) == 2


def test_a_damaged_upload_record_uploads(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = dataset_folder(tmp_path)
    publish_dataset(session, folder, "n")
    folder.with_name(f"{folder.name}.uploaded.json").write_text('{"ref": "podium-tester/so')
    assert publish_dataset(session, folder, "n") == "podium-tester/some-data"
    assert len(standin.datasets["podium-tester/some-data"]) == 2


@pytest.mark.parametrize("ours", [True, False], ids=["its-own-weights", "an-extra-source"])
def test_a_push_with_a_dataset_kaggle_lacks_is_refused_before_anything_starts(tmp_path, standin, session, ours):
    from podium.kaggle.kernel_runs import publish_weights, push

    weights = tmp_path / "b0.weights.h5"
    weights.write_bytes(b"\x89HDF" + b"w" * 100)
    spec = {"weights_file": str(weights)} if ours else {"dataset_sources": ["someone/gone-data"]}
    _, rendered = render_train_kernel(tmp_path, **spec)
    if ours:
        publish_weights(session, rendered.weights_dataset)
        standin.datasets.clear()  # deleted on Kaggle since
    with pytest.raises(PodiumError, match="does not exist on Kaggle") as err:
        push(session, rendered.folder, clock=lambda: 0.0)
    assert ("uploads it again" in err.value.fix) == ours and "nothing was pushed" in str(err.value)
    assert not standin.requests_named("SaveKernel") and not (rendered.folder / "push.json").exists()


# -------------------------------------------------------------------------------------------- (f) waits
LONG = [
    ("StartBlobUpload", "3600"),
    ("CreateDataset", "3600"),
    ("PUT /upload", "7200"),
    ("GetDatasetStatus", "86400"),
]


@pytest.mark.parametrize("match, seconds", LONG, ids=[m.split()[-1].strip("/") for m, _ in LONG])
def test_a_long_retry_after_on_the_dataset_calls_is_refused_not_slept(tmp_path, standin, session, match, seconds):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = dataset_folder(tmp_path)
    standin.fail(match, status=429, retry_after=seconds)
    started = time.monotonic()
    with pytest.raises(PodiumError, match=f"Kaggle asks to wait {seconds} s") as err:
        publish_dataset(session, folder, "n")
    assert session.retry.sleep == [] and time.monotonic() - started < 60  # nothing slept for real
    assert f"Retry-After: {seconds} s" in str(err.value) and "stand-in fault 429" in str(err.value)  # Kaggle's words


def test_a_long_retry_after_on_a_dataset_version_is_refused(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    folder = dataset_folder(tmp_path)
    publish_dataset(session, folder, "n")
    (folder / "weights.h5").write_bytes(b"\x89HDF" + b"v" * 40)
    standin.fail("CreateDatasetVersion", status=429, retry_after="3600")
    with pytest.raises(PodiumError, match="Kaggle asks to wait 3600 s"):
        publish_dataset(session, folder, "n")
    assert session.retry.sleep == [] and len(standin.datasets["podium-tester/some-data"]) == 1


def test_a_short_retry_after_on_a_dataset_call_is_waited(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import publish_dataset

    standin.fail("StartBlobUpload", status=429, retry_after="3")
    assert publish_dataset(session, dataset_folder(tmp_path), "n") == "podium-tester/some-data"
    assert session.retry.sleep == [3.0] and len(standin.requests_named("/CreateDataset ")) == 1


@pytest.mark.parametrize("status, retry_after, slept", [(429, "5", [5.0]), (429, None, [2.0]), (503, None, [2.0])])
def test_a_refused_savekernel_is_retried_like_any_call(tmp_path, standin, session, status, retry_after, slept):
    from podium.kaggle.kernel_runs import push

    _, rendered = render_train_kernel(tmp_path)
    standin.fail("SaveKernel", status=status, retry_after=retry_after)
    state = push(session, rendered.folder, clock=lambda: 0.0)
    assert state["version"] == 1 and not state.get("adopted") and session.retry.sleep == slept
    assert len(standin.kernels[rendered.ref].versions) == 1


def test_a_long_retry_after_on_savekernel_is_refused_and_push_json_restored(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import push

    _, rendered = render_train_kernel(tmp_path)
    standin.fail("SaveKernel", status=429, retry_after="3600")
    with pytest.raises(PodiumError, match="Kaggle asks to wait 3600 s"):
        push(session, rendered.folder, clock=lambda: 0.0)
    assert session.retry.sleep == [] and not (rendered.folder / "push.json").exists()
    assert rendered.ref not in standin.kernels


# ------------------------------------------------------------------- (g) 401/403 on a kernel's status
@pytest.mark.parametrize("status, said, body", [
    (401, "rejected the credentials (HTTP 401)", None),
    (403, "refused access (HTTP 403)", None),
    (403, "refused access (HTTP 403)", "<html><title>403 Forbidden</title><body>Permission denied</body></html>"),
])
def test_a_401_or_403_on_kernel_status_blames_credentials_with_kaggles_words(tmp_path, standin, session,
                                                                              status, said, body):
    from podium.kaggle.client import kernel_status

    standin.kernels["podium-tester/podium-demo"] = Kernel(ref="podium-tester/podium-demo", versions=[{}],
                                                          plan=["RUNNING"])
    kwargs = {"body": body, "content_type": "text/html"} if body else {}
    standin.fail("GetKernelSessionStatus", status=status, **kwargs)
    with pytest.raises(PodiumError) as err:
        kernel_status(session, "podium-tester/podium-demo")
    text = str(err.value)
    assert said in text and "reading the status of kernel podium-tester/podium-demo" in text
    assert "slug" not in text.lower().replace("<owner>/<slug>", "")
    assert ("Permission denied" if body else f"stand-in fault {status}") in text  # what Kaggle said
    assert "credentials" in text and standin.key not in text


def test_a_403_while_waiting_for_a_kernel_says_so(tmp_path, standin, session):
    from podium.kaggle.kernel_runs import StatusPolicy, push, wait_for_kernel

    _, rendered = render_train_kernel(tmp_path)
    push(session, rendered.folder, clock=lambda: 0.0)
    standin.fail("GetKernelSessionStatus", status=403)
    with pytest.raises(PodiumError, match="HTTP 403") as err:
        wait_for_kernel(session, rendered.folder, StatusPolicy(sleep=Sleeps(), clock=lambda: 0.0))
    assert "wrong kernel slug" not in str(err.value) and "podium-tester" in str(err.value)


def test_again_on_an_attempt_of_unknown_outcome_asks_kaggle_first(run, standin, session, poll):
    """`--again` sends a file already submitted again; an attempt whose outcome is unknown is not known to be
    submitted, so its token is looked for first and a landed one is adopted, not doubled."""
    from podium.kaggle.client import KaggleSession, RetryPolicy
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", garble=True, **GARBLED["html-200"])
    standin.fail("ListSubmissions", status=502, times=999, after=1)
    with pytest.raises(PodiumError, match="could not be checked"):
        submit(run, get_task(run.competition.task), session, poll)
    standin.faults.clear()
    again = submit(run, get_task(run.competition.task), KaggleSession(retry=RetryPolicy(sleep=Sleeps())), poll,
                   again=True)
    assert again.adopted and len(standin.submissions["demo"]) == 1 and len(creates(standin)) == 1


@pytest.mark.parametrize("body", ['{"message": "Your submission was successfully saved"}', '{"ref": 0}',
                                  '{"message": "", "ref": "x"}'])
def test_a_code_submission_answer_without_a_reference_is_unknown_not_refused(standin, session, poll, tmp_path,
                                                                            body):
    from podium.kaggle.submit import KernelVersion, SubmitTarget, submit
    from podium.data.competitions import load_competition

    (tmp_path / "code.yaml").write_text("slug: tiny-code\ntitle: code\nsubmission_kind: code\n")
    standin.add_competition("tiny-code", {})
    standin.kernels["podium-tester/k-code"] = Kernel(ref="podium-tester/k-code", versions=[{}])
    target = SubmitTarget(run_id="r-1", competition=load_competition(str(tmp_path / "code.yaml")),
                          file=tmp_path / "push.json", cv=None, config_hash="1", data_root=tmp_path,
                          submissions_dir=tmp_path / "submissions",
                          kernel=KernelVersion("podium-tester/k-code", 1, "COMPLETE"))
    standin.fail("CreateCodeSubmission", garble=True, body=body)
    result = submit(target, get_task(target.competition.task), session, poll)
    assert result.adopted and len(standin.submissions["tiny-code"]) == 1
