"""podium.kaggle.faults: what a failed call to Kaggle becomes, from real requests/urllib3 exceptions and real
HTTP responses: retried (TransientError), reconciled (OutcomeUnknown: a create may have taken effect) or told
(PodiumError), with what Kaggle said and the credentials redacted."""

import json

import pytest
import requests
import urllib3

from podium.errors import PodiumError
from podium.kaggle import faults
from podium.kaggle.credentials import Credentials

CREDS = Credentials(username="someone", key="k" * 32, source="~/.kaggle/kaggle.json")
API = "https://www.kaggle.com/api/v1/competitions.CompetitionApiService/"


def _http_error(status, body=b"", url=API + "ListCompetitions", headers=None, history=()):
    response = requests.models.Response()
    response.status_code, response._content, response.url = status, body, url
    response.headers.update(headers or {})
    response.history = list(history)
    request = requests.Request("POST", url).prepare()
    response.request = request
    return requests.HTTPError(f"{status} Error", response=response, request=request)


def _classify(exc, creates=False, rules_url=""):
    return faults.classify(exc, "doing it", creates, rules_url, CREDS, clock=lambda: 1_000_000.0)


def test_rate_limits_and_server_errors_are_transient_with_retry_after():
    err = _classify(_http_error(429, json.dumps({"message": "slow down"}).encode(), headers={"Retry-After": "7"}))
    assert type(err) is faults.TransientError and err.retry_after == 7.0 and err.received == "slow down"
    assert type(_classify(_http_error(503))) is faults.TransientError


def test_a_server_error_to_the_creating_request_is_an_unknown_outcome():
    create = API + "CreateSubmission"
    assert type(_classify(_http_error(500, url=create), creates="CreateSubmission")) is faults.OutcomeUnknown
    # another request of the same call failed: nothing was created by it
    assert type(_classify(_http_error(500), creates="CreateSubmission")) is faults.TransientError
    # 503 refused the request before acting
    assert type(_classify(_http_error(503, url=create), creates=True)) is faults.TransientError


def test_credentials_rules_and_missing_things_are_told_not_retried():
    err = _classify(_http_error(401, b"Unauthenticated " + b"k" * 32))
    assert type(err) is PodiumError and "HTTP 401" in str(err) and "k" * 32 not in err.received
    assert "kaggle.json" in err.received
    err = _classify(_http_error(403), rules_url="https://www.kaggle.com/c/demo/rules")
    assert "rules have not been accepted" in str(err) and "https://www.kaggle.com/c/demo/rules" in err.fix
    err = _classify(_http_error(403))
    assert "account 'someone'" in str(err) and type(err) is PodiumError
    assert "HTTP 404" in str(_classify(_http_error(404, b"<html><b>Not found</b></html>")))
    assert _classify(_http_error(404, b"<html><b>Not found</b></html>")).received == "Not found"


def test_an_expired_storage_link_is_retried_not_blamed_on_the_rules():
    redirect = requests.models.Response()
    err = _classify(_http_error(403, url="https://storage.example.com/file.zip?sig=1", history=[redirect]),
                    rules_url="https://www.kaggle.com/c/demo/rules")
    assert type(err) is faults.TransientError and "link expired" in str(err)
    assert "storage.example.com" in err.received


def test_dropped_connections_are_transient_and_unknown_only_when_the_request_left():
    sent = requests.Request("POST", API + "CreateSubmission").prepare()
    reset = requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.",
                                                                      ConnectionResetError(104, "reset")),
                                     request=sent)
    assert type(_classify(reset, creates=True)) is faults.OutcomeUnknown
    assert type(_classify(reset, creates=False)) is faults.TransientError
    refused = requests.ConnectionError(urllib3.exceptions.NewConnectionError(None, "refused"), request=sent)
    err = _classify(refused, creates=True)
    assert type(err) is faults.TransientError and "connection to Kaggle failed" in str(err)
    cut = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(10 bytes read)")
    assert "cut off" in str(_classify(cut))
    assert type(_classify(requests.ConnectTimeout("timed out"))) is faults.TransientError


def test_an_unreadable_answer_may_have_acted_on_a_create():
    garbled = json.JSONDecodeError("Expecting value", "<html>maintenance</html>", 0)
    err = _classify(garbled, creates=True)
    assert type(err) is faults.OutcomeUnknown and "<html>maintenance</html>" in err.received
    assert type(_classify(garbled)) is faults.TransientError


def test_other_failures_are_told_and_a_programming_error_is_raised_again():
    assert "request to Kaggle failed" in str(_classify(requests.TooManyRedirects("30 redirects")))
    assert "Writing failed" in str(_classify(OSError(28, "No space left on device")))
    assert type(_classify(ValueError("File size does not match expected size"))) is faults.TransientError
    with pytest.raises(ZeroDivisionError):
        _classify(ZeroDivisionError("a bug"))


def test_the_http_error_beneath_a_clients_own_error_is_found():
    http = _http_error(403)
    try:
        try:
            raise http
        except requests.HTTPError:
            raise ValueError("Kernel not found: check the slug")
    except ValueError as wrapped:
        assert faults.http_error_beneath(wrapped) is http
    plain = ValueError("no HTTP underneath")
    assert faults.http_error_beneath(plain) is plain


def test_retry_after_reads_seconds_and_http_dates_never_negative():
    assert faults.parse_retry_after("12", clock=lambda: 0.0) == 12.0
    assert faults.parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", clock=lambda: 40.0) == 60.0
    assert faults.parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", clock=lambda: 500.0) == 0.0
    assert faults.parse_retry_after("soon") is None and faults.parse_retry_after(None) is None
