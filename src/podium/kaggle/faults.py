"""What went wrong in a call to Kaggle, in words: every failure of the official client becomes a PodiumError.

KaggleSession.call (podium.kaggle.session) hands each exception to `classify`, which decides three things:
whether trying again may work (TransientError: a 429/5xx, a dropped or refused connection, an answer cut
off), whether Kaggle may have acted on a creating request although the answer was lost or unreadable
(OutcomeUnknown: the caller reconciles instead of re-sending), and what the user is told (what Kaggle said,
credentials redacted). A client method that catches an HTTP error and raises its own (kernels_status turns
a 401/403 into a ValueError blaming the slug) is classified by the HTTP error underneath
(http_error_beneath). Every transport failure (requests / urllib3 / http.client / socket families) becomes
a TransientError; none escapes as a traceback.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, Callable

from podium.errors import PodiumError
from podium.kaggle.credentials import Credentials

TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class TransientError(PodiumError):
    """Kaggle could not answer now (rate limit, server error, dropped connection); trying later may work."""

    def __init__(self, what: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(what, **kwargs)
        self.retry_after = retry_after


class OutcomeUnknown(TransientError):
    """The connection dropped after a creating request was sent: it may or may not have taken effect."""




def classify(exc: Exception, what: str, creates: bool | str, rules_url: str, creds: Credentials,
             clock: Callable[[], float] = time.time) -> PodiumError:
    """The PodiumError for a failed call (`what`: "while <what>"); raises exc again for a programming error.

    `creates`: the call creates something (a string names the creating request); `rules_url`: a 403 then
    means the competition's rules are not accepted; `clock` reads a Retry-After HTTP date."""
    status = status_of(exc)
    if status is not None and 200 <= status < 400 and _is_malformed(exc):
        return _malformed(exc, what, creates, status, creds)
    if status is not None:
        return _http_fault(exc, status, what, creates, rules_url, creds, clock)
    received = creds.redact(f"{type(exc).__name__}: {exc}")[:300]
    if _is_malformed(exc):
        return _malformed(exc, what, creates, None, creds)
    if _is_cut(exc):
        return _transport(f"Kaggle's answer was cut off while {what}.", exc, creates, received)
    if _is_transport(exc):
        return _transport(f"The connection to Kaggle failed while {what}.", exc, creates, received)
    if isinstance(exc, ValueError) and "does not match expected size" in str(exc):  # client's size check
        return TransientError(f"The download was incomplete while {what}.", received=received,
                              fix="run the same command again")
    import requests

    if isinstance(exc, requests.RequestException):  # e.g. too many redirects, an invalid URL
        return PodiumError(f"The request to Kaggle failed while {what}.", received=received,
                           fix="run with VERBOSE=1 for the client's trace")
    if isinstance(exc, OSError):  # not the network (that was above): the disk (full, read-only, rights)
        return PodiumError(f"Writing failed while {what}.", received=received,
                           fix="check free space and permissions of the target folder")
    if isinstance(exc, (ValueError, KeyError)):
        return PodiumError(f"The Kaggle client refused while {what}.", received=creds.redact(str(exc))[:300],
                           fix="see the message")
    raise exc  # a programming error: its traceback is the useful report


def _http_fault(exc: Exception, status: int, what: str, creates: bool | str, rules_url: str, creds: Credentials,
                clock: Callable[[], float]) -> PodiumError:
    """An HTTP error status: retried (429/5xx), the credentials (401), a refusal (403), nothing there (404)."""
    said = creds.redact(_server_message(exc))
    if status in TRANSIENT_STATUS:
        retry_after = _retry_after(exc, clock) if status in (429, 503) else None
        # 500/502/504 to the creating request itself: the server (or the one behind a gateway) may
        # have acted before failing, so it is reconciled like a lost answer; 429/503 refused it
        acted = status in (500, 502, 504) and _names_create(creates, getattr(exc.response, "url", ""))
        kind = OutcomeUnknown if acted else TransientError
        return kind(f"Kaggle answered HTTP {status} while {what}.", received=said or f"HTTP {status}",
                    retry_after=retry_after, fix="run the same command again later")
    if status == 401:
        return PodiumError(f"Kaggle rejected the credentials (HTTP 401) while {what}.",
                           expected="a valid API key or token",
                           received=f"Kaggle said {said or 'HTTP 401'!r} to the credentials from {creds.source}",
                           fix="create a new token at https://www.kaggle.com/settings and replace "
                               "kaggle.json (or KAGGLE_KEY / KAGGLE_API_TOKEN)")
    if status == 403:
        return _refused(exc, what, said, rules_url, creds)
    if status == 404:
        return PodiumError(f"Kaggle found nothing (HTTP 404) while {what}.", expected="an existing name",
                           received=said or "HTTP 404", fix="check the slug / name for typos")
    return PodiumError(f"Kaggle answered HTTP {status} while {what}.", received=said or f"HTTP {status}",
                       fix="check the request; run with VERBOSE=1 for the client's trace")


def _refused(exc: Exception, what: str, said: str, rules_url: str, creds: Credentials) -> PodiumError:
    """HTTP 403: an expired storage link (retried), the competition's rules, or a missing permission."""
    if _from_storage(exc):  # the signed link of a redirect, not the API: not rules
        host = _host(getattr(exc.response, "url", ""))
        return TransientError(f"The storage host refused the download link (HTTP 403) while {what}: "
                              "the download link expired.", expected="a fresh signed link",
                              received=said or f"HTTP 403 from {host}",
                              fix="the download link expired; run the same command again")
    if rules_url:
        return PodiumError(f"Kaggle refused access (HTTP 403) while {what}: the competition's rules "
                           "have not been accepted with this account.",
                           expected="the rules accepted on the competition's page", received=said or "HTTP 403",
                           fix=f"open {rules_url}, accept the rules, then run the same command again")
    return PodiumError(f"Kaggle refused access (HTTP 403) while {what}: the credentials in use "
                       f"(account '{creds.username}', from {creds.source}) lack the permission.",
                       expected="permission", received=f"Kaggle said {said or 'HTTP 403'!r}",
                       fix=f"check that account '{creds.username}' may do this (its own or a shared "
                           "item; a token with the needed scopes)")


def _malformed(exc: Exception, what: str, creates: bool | str, status: int | None,
               creds: Credentials) -> TransientError:
    """An answer that came but cannot be read: Kaggle may have acted (a create is reconciled, not resent)."""
    body = creds.redact(_body_text(exc))[:200]
    said = f"HTTP {status or 200} with a body that is not the expected JSON: {body!r}" if body else \
        f"HTTP {status or 200} with an unreadable body ({type(exc).__name__}: {str(exc)[:120]})"
    kind = OutcomeUnknown if _names_create(creates, _failed_url(exc)) else TransientError
    return kind(f"Kaggle's answer could not be read while {what}.", expected="a JSON answer", received=said,
                fix="run the same command again: " + ("it asks Kaggle whether this took effect before "
                                                      "sending again" if kind is OutcomeUnknown else
                                                      "it is only a read"))


def _transport(what: str, exc: Exception, creates: bool | str, received: str) -> TransientError:
    unknown = not _never_sent(exc) and _names_create(creates, _failed_url(exc))
    kind = OutcomeUnknown if unknown else TransientError
    return kind(what, received=received, fix="check the network and run the same command again")


def status_of(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _server_message(exc: Exception) -> str:
    """What Kaggle said: the JSON error's message, else the start of the body as text (an HTML error page)."""
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        text = response.text
    except Exception:  # noqa: BLE001 - a streamed body already consumed or undecodable
        return ""
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])[:300]
    except (ValueError, TypeError):
        pass
    return " ".join(re.sub(r"<[^>]*>", " ", str(text or "")).split())[:200]


def http_error_beneath(exc: Exception) -> Exception:
    """The HTTP error a client method caught and replaced by its own (its __context__), else exc itself."""
    if status_of(exc) is not None:
        return exc
    seen, item = set(), exc.__cause__ or exc.__context__
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        if status_of(item) is not None and isinstance(item, Exception):
            return item
        item = item.__cause__ or item.__context__
    return exc


def _is_malformed(exc: BaseException) -> bool:
    """A 2xx answer whose body is not what the client can read: JSON cut short, an HTML page, a bad shape."""
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return True
    if isinstance(exc, (AttributeError, TypeError, KeyError, ValueError)):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is not None and "kagglesdk" in tb.tb_frame.f_code.co_filename and \
            "kaggle_object" in tb.tb_frame.f_code.co_filename
    return False


def _body_text(exc: BaseException) -> str:
    doc = getattr(exc, "doc", None)  # json.JSONDecodeError keeps the text it could not parse
    if isinstance(doc, str):
        return " ".join(doc.split())
    return _server_message(exc) if getattr(exc, "response", None) is not None else ""


def _retry_after(exc: Exception, clock: Callable[[], float] = time.time) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3), never negative."""
    value = exc.response.headers.get("Retry-After")  # type: ignore[attr-defined]
    return parse_retry_after(value, clock)


def parse_retry_after(value: str | None, clock: Callable[[], float] = time.time) -> float | None:
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" or no zone: RFC 9110 dates are GMT
        import datetime as _dt

        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, when.timestamp() - clock())


def _is_cut(exc: BaseException) -> bool:
    """An answer that started and stopped short: chunked/length mismatch, broken decoding."""
    import http.client

    import requests
    import urllib3

    return isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
                            urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError,
                            http.client.IncompleteRead))


def _is_transport(exc: BaseException) -> bool:
    """Refused, reset, timed out, dropped: the network, not the request."""
    import http.client

    import requests
    import urllib3

    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError,
                            urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError,
                            TimeoutError))


def _never_sent(exc: BaseException) -> bool:
    """The connection was never made (refused, connect timeout): the request did not leave this machine."""
    import requests
    import urllib3

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (requests.ConnectTimeout, urllib3.exceptions.NewConnectionError,
                             urllib3.exceptions.ConnectTimeoutError, ConnectionRefusedError)):
            return True
        stack += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    return False


def _names_create(creates: bool | str, url: str) -> bool:
    """Whether the failed request may be the creating one: any request of a `creates=True` call, or the
    named method (`creates="CreateSubmission"`), or an unknown request of a creating call."""
    if not creates:
        return False
    return not isinstance(creates, str) or not url or url.split("?")[0].endswith("/" + creates)


def _failed_url(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    return str(getattr(request, "url", "") or "")


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "the storage host"


def _from_storage(exc: Exception) -> bool:
    """The failing answer came from where a redirect led (a signed storage URL), not from an API method."""
    response = getattr(exc, "response", None)
    if response is None:
        return False
    from urllib.parse import urlsplit

    path = urlsplit(str(getattr(response, "url", "") or "")).path
    return bool(getattr(response, "history", None)) or not re.search(r"/v1/[\w.]+Service/\w+$", path)


