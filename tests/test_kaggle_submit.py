"""make submit through the real kaggle client against the stand-in: validated, sent once, logged, scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaggle_standin import Sleeps, kaggle_home, poll, session, standin  # noqa: F401 (fixtures)
from tests_support import log_rows
from podium.errors import PodiumError
from podium.tasks import get_task

SUBMIT_SEQUENCE = [
    "POST /api/v1/competitions.CompetitionApiService/ListSubmissions -> 200",  # is this attempt there already?
    "POST /api/v1/competitions.CompetitionApiService/StartSubmissionUpload -> 200",
    "PUT /upload/blob-1001 -> 200",
    "POST /api/v1/competitions.CompetitionApiService/CreateSubmission -> 200",
    "POST /api/v1/competitions.CompetitionApiService/ListSubmissions -> 200",  # poll: pending
    "POST /api/v1/competitions.CompetitionApiService/ListSubmissions -> 200",  # poll: scored
]


@pytest.fixture
def run(demo_data, tmp_path, standin, kaggle_home):
    """A finished demo run: saved config, metrics.json and a valid submission file."""
    from podium.config import load_config, save_config
    from podium.io import write_json
    from podium.kaggle.submit import resolve_target

    cfg = load_config("configs/demo.yaml" if Path("configs/demo.yaml").is_file() else None, {
        "data_dir": str(demo_data), "runs_dir": str(tmp_path / "runs"),
        "submissions_dir": str(tmp_path / "submissions")})
    save_config(cfg, cfg.run_dir / "config.yaml")
    write_json(cfg.run_dir / "metrics.json", {"cv_mean": 0.8125})
    sample = pd.read_csv(demo_data / "demo" / "sample_submission.csv", dtype=str)
    sample["label"] = "cat"
    path = tmp_path / "submissions" / "demo" / f"{cfg.run_id}.csv"
    path.parent.mkdir(parents=True)
    sample.to_csv(path, index=False)
    standin.add_competition("demo", {})
    return resolve_target(cfg=cfg)


def test_submit_refuses_a_task_other_than_the_competitions(run, standin, session, poll):
    """make submit hands down the competition's task; another one is named before anything is sent."""
    from podium.kaggle.submit import submit

    with pytest.raises(PodiumError, match="is a classification competition, the task given is segmentation"):
        submit(run, get_task("segmentation"), session, poll)
    assert not (run.submissions_dir / "log.csv").exists()


def test_submit_validates_sends_logs_and_records_the_score(run, standin, session, poll):
    from podium.kaggle.submit import submit

    result = submit(run, get_task(run.competition.task), session, poll)
    assert standin.log == SUBMIT_SEQUENCE
    (sent,) = standin.submissions["demo"]
    assert sent.content == run.file.read_bytes()
    assert sent.description == result.message
    assert result.message.startswith(f"{run.run_id} cfg {run.config_hash} cv 0.8125 [podium ")
    assert (result.status, result.public_score, result.adopted) == ("scored", standin.public_score, False)
    (row,) = log_rows(run)
    assert row["competition"] == "demo" and row["file"] == str(run.file) and row["cv"] == "0.812500"
    assert (row["status"], row["public_score"], row["ref"]) == ("scored", "0.91250", str(sent.ref))
    assert row["message"] == result.message and row["time"]
    assert poll.sleep == [5]


def test_an_invalid_file_sends_nothing_and_logs_nothing(run, standin, session, poll):
    from podium.kaggle.submit import submit

    frame = pd.read_csv(run.file, dtype=str)
    frame.loc[0, "label"] = "kitten"
    frame.to_csv(run.file, index=False)
    with pytest.raises(PodiumError, match="kitten"):
        submit(run, get_task(run.competition.task), session, poll)
    assert standin.log == [] and not (run.submissions_dir / "log.csv").exists()


def test_reset_after_create_submission_is_adopted_not_resent(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", reset="after")
    result = submit(run, get_task(run.competition.task), session, poll)
    assert len(standin.submissions["demo"]) == 1  # the server has it once
    assert result.adopted and result.status == "scored"
    assert standin.requests_named("CreateSubmission") == [
        "POST /api/v1/competitions.CompetitionApiService/CreateSubmission -> 200 handled, then RESET"]
    assert any("not sent again" in event for event in result.events)
    (row,) = log_rows(run)
    assert row["ref"] == str(standin.submissions["demo"][0].ref)


def test_a_create_listed_only_seconds_later_is_waited_for_not_resent(run, standin, session, poll):
    """CreateSubmission acted, the answer was lost, and Kaggle lists it only three list calls later."""
    from podium.kaggle.submit import submit

    standin.late_list = 3
    standin.fail("CreateSubmission", reset="after")
    result = submit(run, get_task(run.competition.task), session, poll)
    assert len(standin.submissions["demo"]) == 1 and result.adopted and result.status == "scored"
    assert len(standin.requests_named("CreateSubmission")) == 1
    names = [line.split("/")[-1] for line in standin.log]
    assert names[:9] == ["ListSubmissions -> 200", "StartSubmissionUpload -> 200", "blob-1001 -> 200",
                         "CreateSubmission -> 200 handled, then RESET"] + ["ListSubmissions -> 200"] * 5
    assert session.retry.sleep == [2.0, 4.0, 8.0]  # growing waits, found on the 4th look
    (row,) = log_rows(run)
    assert (row["status"], row["ref"]) == ("scored", str(standin.submissions["demo"][0].ref))


@pytest.mark.parametrize("fault, said", [
    (dict(match="StartSubmissionUpload", status=401), "HTTP 401"),
    (dict(match="ListSubmissions", status=401), "HTTP 401"),
    (dict(match="StartSubmissionUpload", status=403), "rules have not been accepted"),
    (dict(match="CreateSubmission", status=429, retry_after="86400"), "asks to wait 86400 s"),
    (dict(match="StartSubmissionUpload", reset="before", times=99), "connection to Kaggle failed while submitting"),
], ids=["401-upload", "401-list", "403", "refused-429", "upload-unreachable"])
def test_a_failure_that_sent_nothing_marks_the_row_failed(run, standin, session, poll, fault, said):
    from podium.kaggle.submit import submit

    standin.fail(**fault)
    with pytest.raises(PodiumError, match=said):
        submit(run, get_task(run.competition.task), session, poll)
    assert standin.submissions.get("demo", []) == []
    (row,) = log_rows(run)
    assert row["status"] == "failed" and row["note"].startswith("nothing sent: ")
    standin.faults.clear()
    result = submit(run, get_task(run.competition.task), session, poll)  # the same command again: a new token
    assert result.status == "scored" and not result.adopted and len(standin.submissions["demo"]) == 1
    failed, scored = log_rows(run)
    assert (failed["status"], scored["status"]) == ("failed", "scored") and failed["token"] != scored["token"]


def test_an_older_log_without_the_note_column_is_read_and_kept(run, standin, session, poll):
    from podium.kaggle.submit import LOG_COLUMNS, submit

    old = run.submissions_dir / "log.csv"
    old.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in LOG_COLUMNS if c != "note"] + ["mine"]
    old.write_text(",".join(columns) + "\n" + ",".join(f"old-{c}" for c in columns) + "\n")
    submit(run, get_task(run.competition.task), session, poll)
    first, second = log_rows(run)
    assert first["token"] == "old-token" and first["mine"] == "old-mine" and first["note"] == ""
    assert second["status"] == "scored"


def test_reset_mid_upload_ends_in_one_submission(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("PUT /upload", reset="mid-body")
    result = submit(run, get_task(run.competition.task), session, poll)
    assert len(standin.submissions["demo"]) == 1 and result.status == "scored"
    # the session retries the whole call (a fresh upload link), the file from its start; the client's own
    # urllib3 retry is off (it slept any Retry-After the upload host sent, uncapped)
    assert standin.requests_named("PUT /upload") == ["PUT /upload/blob-1001 -> RESET mid-body",
                                                     "PUT /upload/blob-1002 -> 200"]
    assert standin.submissions["demo"][0].content == run.file.read_bytes()  # the whole file, not half


@pytest.mark.parametrize("status, retry_after", [(429, "11"), (503, None)])
def test_a_refusing_answer_to_create_is_retried_after_a_look(run, standin, session, poll, status, retry_after):
    """429/503: Kaggle refused, nothing was created; the session waits and sends the same message again, as it
    retries every call that certainly did nothing (no look needed: nothing is in doubt)."""
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", status=status, retry_after=retry_after)
    submit(run, get_task(run.competition.task), session, poll)
    assert len(standin.submissions["demo"]) == 1
    assert session.retry.sleep == [11.0 if retry_after else 2.0]
    names = [line.split("/")[-1].split(" ")[0] for line in standin.log]
    assert names[:8] == ["ListSubmissions", "StartSubmissionUpload", "blob-1001", "CreateSubmission",
                         "StartSubmissionUpload", "blob-1002", "CreateSubmission", "ListSubmissions"]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_on_create_is_reconciled_like_a_lost_answer(run, standin, session, poll, status):
    """500/502/504 to CreateSubmission itself: Kaggle may have acted. It did not here (the stand-in refused
    before acting), so after the whole reconcile window the same message goes again, once."""
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", status=status)
    result = submit(run, get_task(run.competition.task), session, poll)
    assert len(standin.submissions["demo"]) == 1 and not result.adopted
    assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0, 32.0, 58.0]  # 120 s of looking before re-sending
    names = [line.split("/")[-1].split(" ")[0] for line in standin.log]
    assert names[:14] == ["ListSubmissions", "StartSubmissionUpload", "blob-1001", "CreateSubmission"] + \
        ["ListSubmissions"] * 7 + ["StartSubmissionUpload", "blob-1002", "CreateSubmission"]
    (sent,) = standin.submissions["demo"]
    assert sent.description == result.message == log_rows(run)[0]["message"]  # the same token, one row


def test_a_crash_between_log_and_send_is_resumed_with_the_same_token(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("CreateSubmission", reset="after")
    standin.fail("ListSubmissions", reset="before", times=99, after=1)  # then the network dies for good
    with pytest.raises(PodiumError):
        submit(run, get_task(run.competition.task), session, poll)
    (row,) = log_rows(run)
    assert row["status"] == "sending"
    standin.faults.clear()
    result = submit(run, get_task(run.competition.task), session, poll)  # the user runs the command again
    assert len(standin.submissions["demo"]) == 1 and result.adopted
    assert len(log_rows(run)) == 1 and log_rows(run)[0]["status"] == "scored"


def test_rerunning_after_success_sends_nothing(run, standin, session, poll):
    from podium.kaggle.submit import submit

    submit(run, get_task(run.competition.task), session, poll)
    standin.clear_log()
    result = submit(run, get_task(run.competition.task), session, poll)
    assert standin.log == [] and result.adopted and result.public_score == "0.91250"
    again = submit(run, get_task(run.competition.task), session, poll, again=True)
    assert len(standin.submissions["demo"]) == 2 and not again.adopted
    assert len(log_rows(run)) == 2


def test_unscored_within_the_bound_is_pending_then_resumed(run, standin, session):
    from podium.kaggle.submit import PollPolicy, submit

    standin.score_after_polls = 50
    clock = iter(range(0, 10_000, 10))
    bounded = PollPolicy(timeout=60, interval=5, factor=2, sleep=Sleeps(), clock=lambda: float(next(clock)))
    result = submit(run, get_task(run.competition.task), session, bounded)
    assert result.status == "pending" and log_rows(run)[0]["status"] == "pending"
    assert bounded.sleep == [5, 10, 20]  # backoff, bounded by the timeout
    standin.submissions["demo"][0].polls_until_scored = 0
    standin.clear_log()
    resumed = submit(run, get_task(run.competition.task), session, bounded)
    assert resumed.status == "scored" and not standin.requests_named("CreateSubmission")


def test_scoring_error_is_recorded(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.score_after_polls = 99
    submit(run, get_task(run.competition.task), session, poll, wait=False)
    standin.submissions["demo"][0].status = "ERROR"
    result = submit(run, get_task(run.competition.task), session, poll)
    assert result.status == "error" and log_rows(run)[0]["status"] == "error"


def test_rules_not_accepted_on_submit_names_the_rules_page(run, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.competitions["demo"]["rules_accepted"] = False
    with pytest.raises(PodiumError, match="https://www.kaggle.com/competitions/demo/rules"):
        submit(run, get_task(run.competition.task), session, poll)
    assert standin.submissions == {}


def test_submit_by_run_id_finds_config_and_cv(run, tmp_path):
    from podium.kaggle.submit import resolve_target

    target = resolve_target(run_id=run.run_id, runs_dir=str(tmp_path / "runs"))
    assert (target.file, target.cv, target.config_hash) == (run.file, 0.8125, run.config_hash)
    with pytest.raises(PodiumError, match="no saved config"):
        resolve_target(run_id="nope-123", runs_dir=str(tmp_path / "runs"))


@pytest.fixture
def seg_run(tmp_path, standin, kaggle_home):
    """A finished segmentation run on the generated Airbus-layout competition, with a real RLE file."""
    from podium.config import ExperimentConfig, save_config
    from podium.data.rle import encode
    from podium.kaggle.submit import resolve_target
    from tests_support import make_data

    make_data("shapes-segmentation", str(tmp_path / "data"))
    cfg = ExperimentConfig(competition="shapes-segmentation", task="segmentation", monitor="val_dice",
                           data_dir=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"),
                           submissions_dir=str(tmp_path / "submissions"))
    save_config(cfg, cfg.run_dir / "config.yaml")
    sample = pd.read_csv(tmp_path / "data" / "shapes-segmentation" / "sample_submission.csv", dtype=str)
    first, second = sample["ImageId"][:2]
    square, other = np.zeros((80, 96), np.uint8), np.zeros((80, 96), np.uint8)  # the files are 96 x 80
    square[10:20, 10:20] = 1
    other[40:50, 60:70] = 1
    rows = [(first, encode(square)), (first, encode(other)), (second, "")] + \
        [(image_id, "") for image_id in sample["ImageId"][2:]]  # two ships, then empty images
    path = tmp_path / "submissions" / "shapes-segmentation" / f"{cfg.run_id}.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=["ImageId", "EncodedPixels"]).to_csv(path, index=False)
    standin.add_competition("shapes-segmentation", {})
    return resolve_target(cfg=cfg)


def test_a_segmentation_file_with_several_rows_per_image_is_validated_as_rle_and_sent(seg_run, standin, session,
                                                                                      poll):
    from podium.kaggle.submit import submit

    result = submit(seg_run, get_task(seg_run.competition.task), session, poll)
    (sent,) = standin.submissions["shapes-segmentation"]
    assert sent.content == seg_run.file.read_bytes() and result.status == "scored"


def test_overlapping_ships_in_a_segmentation_file_send_nothing(seg_run, standin, session, poll):
    from podium.kaggle.submit import submit

    frame = pd.read_csv(seg_run.file, dtype=str, keep_default_na=False)
    frame.loc[1, "EncodedPixels"] = frame.loc[0, "EncodedPixels"]  # the same ship twice
    frame.to_csv(seg_run.file, index=False)
    with pytest.raises(PodiumError, match="overlap"):
        submit(seg_run, get_task(seg_run.competition.task), session, poll)
    assert standin.submissions.get("shapes-segmentation", []) == [] and standin.log == []
