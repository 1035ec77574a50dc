"""Code competitions: `make submit` submits the pushed kernel version (CreateCodeSubmission) through the real
client against the stand-in, with the CSV path's guarantees: logged before sending, token in the message,
reconciled after a lost answer, never a duplicate, and a wait for the score that a later run resumes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kaggle_standin import Kernel, Sleeps, kaggle_home, poll, session, standin  # noqa: F401 (fixtures)
from tests_support import log_rows
from podium.errors import PodiumError
from podium.tasks import get_task

API = "POST /api/v1/competitions.CompetitionApiService/"
CODE_SPEC = "slug: tiny-code\ntitle: a code competition\nsubmission_kind: code\n"
REF = "podium-tester/podium-codedemo"


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny-code.yaml"
    path.write_text(CODE_SPEC)
    return path


@pytest.fixture
def cfg(tmp_path, spec_path):
    from podium.config import load_config

    return load_config(None, {"name": "codedemo", "competition": str(spec_path), "runs_dir": str(tmp_path / "runs"),
                              "submissions_dir": str(tmp_path / "submissions")})


def pushed(standin, tmp_path, status="COMPLETE", version=2) -> Path:
    """What `make push` + `make status` leave: the kernel on Kaggle and kernels/<slug>/push.json."""
    from podium.io import write_json

    from podium.config import load_config

    standin.kernels[REF] = Kernel(ref=REF, versions=[{}] * version)
    folder = tmp_path / "kernels" / "podium-codedemo"
    run = load_config(None, {"name": "codedemo", "competition": str(tmp_path / "tiny-code.yaml")})
    write_json(folder / "push.json", {"ref": REF, "version": version, "url": "", "token": "f00d", "pushed_at": 0.0,
                                      "seen_active": True, "status": status, "run_id": run.run_id,
                                      "config_hash": run.config_hash(), "run_digest": "", "settings": None})
    return folder


@pytest.fixture
def target(cfg, standin, kaggle_home, tmp_path):
    from podium.kaggle.submit import choose_target

    standin.add_competition("tiny-code", {})
    return choose_target(cfg, pushed(standin, tmp_path))


def create_bodies(standin) -> list[dict]:
    return [json.loads(body) for name, body in standin.bodies if name.endswith("/CreateCodeSubmission")]


def test_the_pushed_version_is_submitted_once_logged_and_scored(target, standin, session, poll):
    from podium.kaggle.submit import submit

    result = submit(target, get_task(target.competition.task), session, poll)
    assert standin.log == [f"{API}ListSubmissions -> 200", f"{API}CreateCodeSubmission -> 200"] + \
        [f"{API}ListSubmissions -> 200"] * 4  # scored on the 4th poll (code_score_after_polls = 3)
    (body,) = create_bodies(standin)
    assert body == {"competitionName": "tiny-code", "kernelOwner": "podium-tester", "kernelSlug": "podium-codedemo",
                    "kernelVersion": 2, "fileName": "submission.csv", "submissionDescription": result.message}
    (sub,) = standin.submissions["tiny-code"]
    assert (sub.kernel, sub.kernel_version, sub.file_name) == (REF, 2, "submission.csv")
    assert f"kernel {REF}@v2" in result.message and "[podium " in result.message
    assert (result.status, result.public_score, result.adopted) == ("scored", "0.91250", False)
    (row,) = log_rows(target)
    assert (row["file"], row["status"], row["ref"], row["sha256"]) == (f"kernel:{REF}@v2", "scored", str(sub.ref), "")
    assert poll.sleep == [5, 7.5, 11.25]


def test_a_lost_answer_listed_late_is_adopted_not_resent(target, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.late_list = 2  # Kaggle lists the new submission only two list calls later
    standin.fail("CreateCodeSubmission", reset="after")
    result = submit(target, get_task(target.competition.task), session, poll)
    assert len(standin.submissions["tiny-code"]) == 1 and result.adopted and result.status == "scored"
    assert standin.requests_named("CreateCodeSubmission") == [
        f"{API}CreateCodeSubmission -> 200 handled, then RESET"]
    assert session.retry.sleep == [2.0, 4.0]  # looked now, after 2 s (hidden), after 4 s more: found
    (row,) = log_rows(target)
    assert row["status"] == "scored" and row["ref"] == str(standin.submissions["tiny-code"][0].ref)


def test_the_wait_for_the_score_survives_the_process_and_is_resumed(target, standin, session, kaggle_home):
    from podium.kaggle.client import KaggleSession, RetryPolicy
    from podium.kaggle.submit import PollPolicy, submit

    standin.code_score_after_polls = 50  # a long re-run on the hidden test set
    clock = iter(range(0, 10_000, 10))
    short = PollPolicy(timeout=30, interval=5, factor=2, sleep=Sleeps(), clock=lambda: float(next(clock)))
    first = submit(target, get_task(target.competition.task), session, short)
    assert first.status == "pending" and log_rows(target)[0]["status"] == "pending"
    standin.submissions["tiny-code"][0].polls_until_scored = 0  # Kaggle finished re-running it meanwhile
    standin.clear_log()
    later = KaggleSession(retry=RetryPolicy(sleep=Sleeps()))  # `make submit` again, in a new process
    resumed = submit(target, get_task(target.competition.task), later, short)
    assert resumed.status == "scored" and resumed.adopted
    assert standin.log == [f"{API}ListSubmissions -> 200"] and not standin.requests_named("Create")
    assert [r["status"] for r in log_rows(target)] == ["scored"]


def test_a_crash_before_the_answer_is_reconciled_by_the_next_run(target, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("CreateCodeSubmission", reset="after")
    standin.fail("ListSubmissions", reset="before", times=999, after=1)  # then the network dies for good
    with pytest.raises(PodiumError, match="could not be checked"):
        submit(target, get_task(target.competition.task), session, poll)
    (row,) = log_rows(target)
    assert row["status"] == "sending" and row["note"].startswith("outcome unknown")
    standin.faults.clear()
    result = submit(target, get_task(target.competition.task), session, poll)
    assert result.adopted and len(standin.submissions["tiny-code"]) == 1
    assert [r["status"] for r in log_rows(target)] == ["scored"]


def test_a_refusal_marks_the_row_failed_and_the_next_run_sends_with_a_new_token(target, standin, session, poll):
    from podium.kaggle.submit import submit

    standin.fail("CreateCodeSubmission", status=403)
    with pytest.raises(PodiumError, match="rules have not been accepted"):
        submit(target, get_task(target.competition.task), session, poll)
    (row,) = log_rows(target)
    assert row["status"] == "failed" and row["note"].startswith("nothing sent: Kaggle refused access (HTTP 403)")
    result = submit(target, get_task(target.competition.task), session, poll)
    assert result.status == "scored" and len(standin.submissions["tiny-code"]) == 1
    failed, scored = log_rows(target)
    assert (failed["status"], scored["status"]) == ("failed", "scored") and failed["token"] != scored["token"]


@pytest.mark.parametrize("status", ["PUSHED", "OUTCOME_UNKNOWN", "RUNNING", "ERROR"])
def test_a_version_not_seen_complete_is_refused_before_anything_is_sent(cfg, standin, kaggle_home, tmp_path,
                                                                        status):
    from podium.kaggle.submit import choose_target

    standin.add_competition("tiny-code", {})
    folder = pushed(standin, tmp_path, status=status)
    if status == "OUTCOME_UNKNOWN":  # a push whose answer was lost has no version yet
        data = json.loads((folder / "push.json").read_text())
        (folder / "push.json").write_text(json.dumps({**data, "version": None}))
    with pytest.raises(PodiumError, match="make status") as err:
        choose_target(cfg, folder)
    assert f"status {status}" in str(err.value) and standin.log == []


def test_a_code_competition_without_a_pushed_kernel_says_make_kernel_and_push(cfg, tmp_path):
    from podium.kaggle.submit import choose_target

    with pytest.raises(PodiumError, match="code competition") as err:
        choose_target(cfg, tmp_path / "kernels" / "podium-codedemo")
    assert "make kernel" in err.value.fix and "make push" in err.value.fix


def test_a_csv_competition_refuses_a_kernel(tmp_path):
    from podium.config import load_config
    from podium.kaggle.submit import choose_target

    csv_cfg = load_config(None, {"competition": "demo", "runs_dir": str(tmp_path / "runs")})
    with pytest.raises(PodiumError, match="takes a CSV, not a kernel"):
        choose_target(csv_cfg, tmp_path / "kernels" / "podium-baseline", kernel_named=True)


def test_make_kernel_push_status_submit_through_the_cli(standin, kaggle_home, tmp_path, spec_path, capsys):
    """The code-competition loop as a user runs it: every verb in-process through podium.cli.main.main. The
    requests of each command are written to server.log (docs/kaggle.md quotes it)."""
    from podium.cli.main import main

    standin.add_competition("tiny-code", {})
    config = tmp_path / "codedemo.yaml"
    config.write_text(f"name: codedemo\ncompetition: {spec_path}\nruns_dir: {tmp_path / 'runs'}\n"
                      f"submissions_dir: {tmp_path / 'submissions'}\n")
    kernel = tmp_path / "kernel.yaml"
    kernel.write_text("accelerator: none\n")
    exp = ["--config", str(config), "--kernel", str(kernel)]
    trail: list[str] = []

    def step(*argv: str) -> tuple[int, str, str]:
        seen = len(standin.log)
        code = main([*argv, *exp])
        trail.append(f"# podium {argv[0]} -> exit {code}")
        trail.extend(standin.log[seen:])
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    code, _, err = step("submit")  # nothing pushed yet
    assert code == 2 and "make kernel" in err and "Traceback" not in err
    assert step("kernel", "--no-upload")[0] == 0
    assert step("push")[0] == 0
    code, _, err = step("submit")  # pushed, but not seen COMPLETE
    assert code == 2 and "make status" in err and not standin.requests_named("CreateCodeSubmission")
    assert step("status", "--poll-interval", "0.01")[0] == 0
    code, out, _ = step("submit", "--poll-interval", "0.01", "--timeout", "0")  # one poll, then it stops
    assert code == 0 and f"kernel {REF} version 1 -> tiny-code" in out
    assert "status pending" in out and "run the same command again" in out
    submitted = len(trail)
    code, out, _ = step("submit", "--poll-interval", "0.01")  # again: resumes the wait, sends nothing
    assert code == 0 and "public score 0.91250" in out
    assert len(standin.requests_named("CreateCodeSubmission")) == 1 and len(standin.submissions["tiny-code"]) == 1
    with (tmp_path / "submissions" / "log.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["file"], row["status"]) == (f"kernel:{REF}@v1", "scored")
    assert trail[submitted - 4:] == [  # look for the token, send, one poll (pending); then only polls
        "# podium submit -> exit 0", f"{API}ListSubmissions -> 200", f"{API}CreateCodeSubmission -> 200",
        f"{API}ListSubmissions -> 200", "# podium submit -> exit 0"] + [f"{API}ListSubmissions -> 200"] * 3
    (tmp_path / "server.log").write_text("\n".join(trail) + "\n")


def test_a_refused_429_through_the_cli_exits_2_and_logs_failed(standin, kaggle_home, tmp_path, spec_path, capsys):
    from podium.cli.main import main

    standin.add_competition("tiny-code", {})
    config = tmp_path / "codedemo.yaml"
    config.write_text(f"name: codedemo\ncompetition: {spec_path}\nsubmissions_dir: {tmp_path / 'submissions'}\n")
    pushed(standin, tmp_path)
    standin.fail("CreateCodeSubmission", status=429, retry_after="86400")  # the daily limit: not slept
    assert main(["submit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Kaggle asks to wait 86400 s" in err and "Traceback" not in err
    with (tmp_path / "submissions" / "log.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["status"] == "failed" and "86400" in row["note"] and standin.submissions.get("tiny-code", []) == []
