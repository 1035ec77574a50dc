"""Transport faults through the real kaggle client against the stand-in: cut bodies, HTTP-date Retry-After,
an expired storage link, and what a failed download leaves behind (nothing)."""

from __future__ import annotations

import email.utils
import json

import pytest

from kaggle_standin import Kernel, Sleeps, kaggle_home, session, standin  # noqa: F401 (fixtures)
from podium.errors import PodiumError
from test_kaggle_download import competition_files

DOWNLOAD = "POST /api/v1/competitions.CompetitionApiService/DownloadDataFile -> 302"
LISTED = "POST /api/v1/competitions.CompetitionApiService/ListDataFiles -> 200"
BIG = bytes(range(256)) * 12_000  # 3 MB: more than the client's 1 MiB chunk, so half a body reaches the disk


def download(standin, session, tmp_path, files=None):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    standin.add_competition("cifar10", competition_files() if files is None else files)
    return download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10", session=session)


def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "raw").iterdir() if p.name.startswith("."))


def test_a_body_cut_on_every_attempt_is_a_podium_error_and_leaves_no_staging(standin, session, tmp_path):
    from podium.kaggle.client import TransientError

    standin.fail("GET /files/cifar10/train.zip", reset="cut-body", times=99)
    with pytest.raises(TransientError, match="cut off while downloading train.zip") as err:
        download(standin, session, tmp_path)
    assert "ChunkedEncodingError" in err.value.received and "run the same command again" in err.value.fix
    train = [line for line in standin.log if "train.zip" in line]
    assert train == ["GET /files/cifar10/train.zip -> 200 CUT after 2228 of 4456 bytes"] * session.retry.attempts
    assert standin.log.count(DOWNLOAD) == 2 + session.retry.attempts  # a fresh link for every attempt
    assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0]
    assert leftovers(tmp_path) == []  # no data/raw/.cifar10.download/
    assert sorted(p.name for p in (tmp_path / "raw" / "cifar10").iterdir()) == ["sample_submission.csv", "test.zip"]
    assert not (tmp_path / "raw" / "cifar10.kaggle-files.json").exists()  # not complete, so not recorded


def test_a_body_cut_once_resumes_from_the_bytes_already_received(standin, session, tmp_path):
    standin.fail("GET /files/cifar10/train.zip", reset="cut-body")
    download(standin, session, tmp_path, {"train.zip": BIG})
    assert (tmp_path / "raw" / "cifar10" / "train.zip").read_bytes() == BIG
    assert standin.log == [LISTED, DOWNLOAD, "GET /files/cifar10/train.zip -> 200 CUT after 1536000 of 3072000 bytes",
                           DOWNLOAD, "GET /files/cifar10/train.zip -> 200",  # the redirect's GET, body unread
                           "GET /files/cifar10/train.zip -> 206"]  # the client's Range request for the rest
    assert standin.ranges == ["bytes=1048576-"]  # one whole 1 MiB chunk had reached the disk
    assert session.retry.sleep == [2.0] and leftovers(tmp_path) == []


def test_an_output_file_cut_mid_body_is_a_podium_error(standin, session, tmp_path):
    from podium.kaggle.client import TransientError
    from podium.kaggle.kernel_runs import download_output
    from podium.io import write_json

    ref = f"{standin.username}/podium-demo"
    standin.kernels[ref] = Kernel(ref=ref, versions=[{}], outputs={"submission.csv": b"id,label\n1,cat\n" * 50})
    folder = tmp_path / "kernels" / "podium-demo"
    write_json(folder / "push.json", {"ref": ref, "version": 1, "url": "", "token": "t0k3n", "pushed_at": 0.0,
                                      "seen_active": True, "status": "COMPLETE"})
    standin.fail("GET /kernel-output", reset="cut-body", times=99)
    with pytest.raises(TransientError, match="cut off while downloading output submission.csv"):
        download_output(session, folder, tmp_path / "runs")
    assert standin.requests_named("GET /kernel-output") == [
        "GET /kernel-output/podium-tester/podium-demo/submission.csv -> 200 CUT after 375 of 750 bytes"] * 5
    assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0]
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def _http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


NOW = 1_790_000_000.0  # the injected wall clock


@pytest.mark.parametrize("header, expected", [("7", 7.0), (_http_date(NOW + 42), 42.0), (_http_date(NOW - 300), 0.0)],
                         ids=["delta-seconds", "http-date", "http-date-in-the-past"])
def test_retry_after_in_seconds_or_as_an_http_date_is_waited(standin, kaggle_home, tmp_path, header, expected):
    from podium.kaggle.client import KaggleSession, RetryPolicy

    session = KaggleSession(retry=RetryPolicy(sleep=Sleeps(), clock=lambda: NOW))
    standin.fail("ListDataFiles", status=429, retry_after=header)
    download(standin, session, tmp_path)
    assert session.retry.sleep == [expected]
    assert standin.requests_named("ListDataFiles") == [LISTED.replace("200", "429"), LISTED]


def test_an_http_date_too_far_ahead_is_refused_not_slept(standin, kaggle_home, tmp_path):
    from podium.kaggle.client import KaggleSession, RetryPolicy

    session = KaggleSession(retry=RetryPolicy(sleep=Sleeps(), clock=lambda: NOW))
    standin.fail("ListDataFiles", status=429, retry_after=_http_date(NOW + 3600))
    with pytest.raises(PodiumError, match="Kaggle asks to wait 3600 s"):
        download(standin, session, tmp_path)
    assert session.retry.sleep == [] and len(standin.requests_named("ListDataFiles")) == 1


STORAGE_403 = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access denied.'
               '</Message><Details>Request has expired</Details></Error>')


def test_a_403_from_the_storage_host_is_an_expired_link_not_the_rules(standin, session, tmp_path):
    standin.fail("GET /files", status=403, body=STORAGE_403, content_type="application/xml", times=99)
    with pytest.raises(PodiumError) as err:
        download(standin, session, tmp_path)
    assert "the download link expired; run the same command again" in str(err.value)
    assert "rules" not in str(err.value)
    assert standin.log[:3] == [LISTED, DOWNLOAD, "GET /files/cifar10/sample_submission.csv -> 403"]
    assert leftovers(tmp_path) == []


def test_an_expired_link_once_is_retried_with_a_fresh_link(standin, session, tmp_path):
    standin.fail("GET /files", status=403, body=STORAGE_403, content_type="application/xml")
    files = download(standin, session, tmp_path)
    assert sorted(p.name for p in files) == ["sample_submission.csv", "test.zip", "train.zip"]
    assert standin.log[:5] == [LISTED, DOWNLOAD, "GET /files/cifar10/sample_submission.csv -> 403", DOWNLOAD,
                               "GET /files/cifar10/sample_submission.csv -> 200"]


def test_a_403_from_the_api_itself_still_names_the_rules(standin, session, tmp_path):
    standin.fail("DownloadDataFile", status=403, body=json.dumps({"code": 403, "message": "accept the rules"}))
    with pytest.raises(PodiumError, match="rules have not been accepted") as err:
        download(standin, session, tmp_path)
    assert "https://www.kaggle.com/competitions/cifar10/rules" in err.value.fix and leftovers(tmp_path) == []


def test_a_connection_refused_is_a_podium_error(kaggle_home, monkeypatch, tmp_path):
    import socket

    from podium.data.competitions import load_competition
    from podium.kaggle.client import KaggleSession, RetryPolicy, TransientError, download_competition

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PODIUM_KAGGLE_ENDPOINT", f"http://127.0.0.1:{port}")
    session = KaggleSession(retry=RetryPolicy(sleep=Sleeps()))
    with pytest.raises(TransientError, match="connection to Kaggle failed while listing the files"):
        download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10", session=session)
    assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0]


def test_reconcile_waits_grow_and_are_bounded():
    from podium.kaggle.client import RetryPolicy

    assert RetryPolicy().reconcile_waits() == [2.0, 4.0, 8.0, 16.0, 32.0, 58.0]
    assert sum(RetryPolicy(reconcile_window=30).reconcile_waits()) == 30
    assert RetryPolicy(base_delay=0).reconcile_waits() == []


def _families():
    import errno
    import http.client

    import requests
    import urllib3

    cut = [requests.exceptions.ChunkedEncodingError("Connection broken"), requests.exceptions.ContentDecodingError(),
           urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
           urllib3.exceptions.IncompleteRead(10, 20), http.client.IncompleteRead(b"abc", 7),
           urllib3.exceptions.DecodeError("bad gzip")]
    dropped = [requests.ConnectionError("aborted"), requests.ReadTimeout("read timed out"),
               urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"),
               http.client.RemoteDisconnected("closed"), ConnectionResetError(104, "reset"), TimeoutError("slow"),
               requests.exceptions.RetryError("too many 500")]
    never_sent = [requests.ConnectTimeout("connect timed out"), ConnectionRefusedError(111, "refused"),
                  requests.ConnectionError(urllib3.exceptions.NewConnectionError(None, "refused"))]
    not_transient = [(requests.TooManyRedirects("30 redirects"), "request to Kaggle failed"),
                     (OSError(errno.ENOSPC, "No space left on device"), "Writing failed")]
    return cut, dropped, never_sent, not_transient


def test_every_transport_family_is_classified(session):
    """Real exception objects of each family, raised where the client would raise them."""
    from podium.kaggle.client import OutcomeUnknown, TransientError

    cut, dropped, never_sent, not_transient = _families()

    def raising(exc):
        def fn():
            raise exc
        return fn

    for exc in cut + dropped:
        session.retry.sleep.clear()
        with pytest.raises(TransientError) as err:
            session.call("reading", raising(exc))
        assert not isinstance(err.value, OutcomeUnknown), exc
        assert ("cut off" if exc in cut else "connection to Kaggle failed") in err.value.what, exc
        assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0], exc  # retried like any transient failure
        with pytest.raises(OutcomeUnknown):  # sent, maybe acted: the caller reconciles, nothing resent here
            session.call("creating", raising(exc), creates=True)
    for exc in never_sent:
        with pytest.raises(TransientError) as err:
            session.call("creating", raising(exc), creates=True)
        assert not isinstance(err.value, OutcomeUnknown), exc  # the connection was never made
    for exc, said in not_transient:
        session.retry.sleep.clear()
        with pytest.raises(PodiumError, match=said) as err:
            session.call("downloading", raising(exc))
        assert not isinstance(err.value, TransientError) and session.retry.sleep == []
