"""Thin layer over the official kaggle client: one session, podium's retries, errors worded for users.

The client logs in at import and exits on failure, so it is imported lazily, after podium has found the
credentials itself (podium.kaggle.credentials). Every call goes through `KaggleSession.call`, which retries what is
safe to retry (429 after Retry-After, 5xx and dropped connections with exponential backoff, both bounded
and with an injectable sleep) and turns everything else into a PodiumError naming the fix.

A call that creates something (a submission, a kernel version) is never retried blindly after a dropped
connection: the server may have acted before the connection died. Such calls raise `OutcomeUnknown`,
and the caller reconciles (kaggle/submit.py looks for its token in the submissions list before sending again).
The same holds for an answer that arrived but cannot be read (cut JSON, an HTML page with status 200):
Kaggle answered, so it may have acted. What certainly did nothing (a 429/503 refusal, a connection never
made) is retried here, for every call, creating ones included (SaveKernel's 429 too).

This is the only retry loop: the client's own (`with_retry`, urllib3's Retry on upload PUTs) sleep any
Retry-After, an hour included, so the session turns them off (see _own_the_retries); a Retry-After over
`RetryPolicy.max_retry_after` is refused with Kaggle's words, on every call.

A client method that catches an HTTP error and raises its own (kernels_status turns a 401/403 into a
ValueError blaming the slug) is classified by the HTTP error underneath: the message says what Kaggle said.

Every transport failure (requests / urllib3 / http.client / socket families: refused, reset, timed out,
an answer cut off mid-body) becomes a TransientError; none escapes as a traceback.

PODIUM_KAGGLE_ENDPOINT=http://host:port points the client's LOCALHOST entry of its endpoint table there
(the only endpoint knob the pinned client has is KAGGLE_API_ENVIRONMENT, whose local entries have fixed
ports); the tests use it to reach the local stand-in.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from podium.backoff import exponential_wait, waits_within
from podium.data.competitions import CompetitionSpec
from podium.kaggle.credentials import Credentials, find_credentials
from podium.errors import PodiumError
from podium.paths import any_folder, mark_made, remove_made
from podium.extras import require
from podium.io import write_json
from podium.io import check_free_space  # one wording and unit choice for every free-space refusal

ENDPOINT_ENV = "PODIUM_KAGGLE_ENDPOINT"
TRANSIENT_STATUS = {429, 500, 502, 503, 504}


class TransientError(PodiumError):
    """Kaggle could not answer now (rate limit, server error, dropped connection); trying later may work."""

    def __init__(self, what: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(what, **kwargs)
        self.retry_after = retry_after


class OutcomeUnknown(TransientError):
    """The connection dropped after a creating request was sent: it may or may not have taken effect."""


@dataclass
class RetryPolicy:
    """How long podium keeps trying; tests pass a recording `sleep` (and a fixed `clock`) so nothing waits."""

    attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    max_retry_after: float = 600.0
    # after a create whose answer was lost: how long the list is searched (growing waits) before re-sending
    reconcile_window: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time  # wall clock: a Retry-After HTTP date is an absolute time

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return exponential_wait(self.base_delay, 2, attempt, self.max_delay)

    def pause(self, what: str, attempt: int, retry_after: float | None, said: str = "") -> float:
        """Sleep before the next attempt. A server asking for more than max_retry_after is refused, with what
        it said."""
        delay = self.delay(attempt, retry_after)
        if delay > self.max_retry_after:
            raise PodiumError(f"Kaggle asks to wait {delay:.0f} s before {what}.",
                              expected=f"a wait under {self.max_retry_after:.0f} s",
                              received=f"Retry-After: {delay:.0f} s" + (f"; Kaggle said {said!r}" if said else ""),
                              fix="run the same command later")
        self.sleep(delay)
        return delay

    def reconcile_waits(self) -> list[float]:
        """Growing waits (2, 4, 8, ... capped at max_delay) that add up to reconcile_window."""
        return waits_within(self.base_delay, 2, self.max_delay, self.reconcile_window)


@dataclass
class KaggleSession:
    """An authenticated KaggleApi plus podium's retry policy. Build one per command."""

    creds: Credentials = field(default_factory=find_credentials)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api: Any = None

    def __post_init__(self) -> None:
        for warning in self.creds.warnings:  # e.g. a world-readable kaggle.json; stderr via logging
            logging.getLogger("podium.kaggle").warning("warning: %s", warning)
        if self.api is None:
            self.api = _build_api(self.creds)
        _own_the_retries(self.api)
        if not self.creds.username:
            username = self.call("checking the API token", self.api._introspect_token, self.creds.token)
            if not username:
                raise PodiumError("Kaggle did not accept the API token.", expected="an active token",
                                  received=f"an inactive token from {self.creds.source}",
                                  fix="create a new token at https://www.kaggle.com/settings")
            self.creds = Credentials(username=username, token=self.creds.token, source=self.creds.source,
                                     warnings=self.creds.warnings)
            self.api.config_values["username"] = username

    @property
    def username(self) -> str:
        return self.creds.username

    def call(self, what: str, fn: Callable[..., Any], *args, creates: bool | str = False, rules_url: str = "",
             missing_ok: bool = False, **kwargs) -> Any:
        """fn(*args) with retries. `creates`: never resent here; a transient failure is raised for the
        caller to reconcile (OutcomeUnknown when the connection dropped after sending). A string names the
        one request that creates (e.g. "CreateSubmission"): a failure of another request of the same call
        (the upload before it) then sent nothing, and is a plain TransientError."""
        attempt = 0
        while True:
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the client prints; podium's CLI does that
                    return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every client failure is classified below
                exc = _http_error_beneath(exc)  # a client-made error over Kaggle's answer: Kaggle's answer
                if missing_ok and _status(exc) == 404:
                    return None
                problem = self._classify(exc, what, creates, rules_url)
                # retried: what certainly did nothing (a refusal, a connection never made); never a create
                # whose outcome is unknown (the caller asks Kaggle first)
                if not isinstance(problem, TransientError) or isinstance(problem, OutcomeUnknown) \
                        or attempt + 1 >= self.retry.attempts:
                    raise problem from exc
                self.retry.pause(what, attempt, problem.retry_after, problem.received)
                attempt += 1

    def _classify(self, exc: Exception, what: str, creates: bool | str, rules_url: str) -> PodiumError:
        status = _status(exc)
        said = self.creds.redact(_server_message(exc))
        if status is not None and 200 <= status < 400 and _is_malformed(exc):
            return self._malformed(exc, what, creates, status)
        if status is not None:
            if status in TRANSIENT_STATUS:
                retry_after = _retry_after(exc, self.retry.clock) if status in (429, 503) else None
                # 500/502/504 to the creating request itself: the server (or the one behind a gateway) may
                # have acted before failing, so it is reconciled like a lost answer; 429/503 refused it
                acted = status in (500, 502, 504) and _names_create(creates, getattr(exc.response, "url", ""))
                kind = OutcomeUnknown if acted else TransientError
                return kind(f"Kaggle answered HTTP {status} while {what}.", received=said or f"HTTP {status}",
                            retry_after=retry_after, fix="run the same command again later")
            if status == 401:
                return PodiumError(f"Kaggle rejected the credentials (HTTP 401) while {what}.",
                                   expected="a valid API key or token",
                                   received=f"Kaggle said {said or 'HTTP 401'!r} to the credentials from "
                                            f"{self.creds.source}",
                                   fix="create a new token at https://www.kaggle.com/settings and replace "
                                       "kaggle.json (or KAGGLE_KEY / KAGGLE_API_TOKEN)")
            if status == 403 and _from_storage(exc):  # the signed link of a redirect, not the API: not rules
                host = _host(getattr(exc.response, "url", ""))
                return TransientError(f"The storage host refused the download link (HTTP 403) while {what}: "
                                      "the download link expired.", expected="a fresh signed link",
                                      received=said or f"HTTP 403 from {host}",
                                      fix="the download link expired; run the same command again")
            if status == 403 and rules_url:
                return PodiumError(f"Kaggle refused access (HTTP 403) while {what}: the competition's rules "
                                   "have not been accepted with this account.",
                                   expected="the rules accepted on the competition's page",
                                   received=said or "HTTP 403",
                                   fix=f"open {rules_url}, accept the rules, then run the same command again")
            if status == 403:
                return PodiumError(f"Kaggle refused access (HTTP 403) while {what}: the credentials in use "
                                   f"(account '{self.username}', from {self.creds.source}) lack the permission.",
                                   expected="permission", received=f"Kaggle said {said or 'HTTP 403'!r}",
                                   fix=f"check that account '{self.username}' may do this (its own or a shared "
                                       "item; a token with the needed scopes)")
            if status == 404:
                return PodiumError(f"Kaggle found nothing (HTTP 404) while {what}.", expected="an existing name",
                                   received=said or "HTTP 404", fix="check the slug / name for typos")
            return PodiumError(f"Kaggle answered HTTP {status} while {what}.", received=said or f"HTTP {status}",
                               fix="check the request; run with VERBOSE=1 for the client's trace")
        received = self.creds.redact(f"{type(exc).__name__}: {exc}")[:300]
        if _is_malformed(exc):
            return self._malformed(exc, what, creates, None)
        if _is_cut(exc):
            return self._transport(f"Kaggle's answer was cut off while {what}.", exc, creates, received)
        if _is_transport(exc):
            return self._transport(f"The connection to Kaggle failed while {what}.", exc, creates, received)
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
            return PodiumError(f"The Kaggle client refused while {what}.",
                               received=self.creds.redact(str(exc))[:300], fix="see the message")
        raise exc  # a programming error: its traceback is the useful report

    def _malformed(self, exc: Exception, what: str, creates: bool | str, status: int | None) -> TransientError:
        """An answer that came but cannot be read: Kaggle may have acted (a create is reconciled, not resent)."""
        body = self.creds.redact(_body_text(exc))[:200]
        said = f"HTTP {status or 200} with a body that is not the expected JSON: {body!r}" if body else \
            f"HTTP {status or 200} with an unreadable body ({type(exc).__name__}: {str(exc)[:120]})"
        kind = OutcomeUnknown if _names_create(creates, _failed_url(exc)) else TransientError
        return kind(f"Kaggle's answer could not be read while {what}.", expected="a JSON answer", received=said,
                    fix="run the same command again: " + ("it asks Kaggle whether this took effect before "
                                                          "sending again" if kind is OutcomeUnknown else
                                                          "it is only a read"))

    def _transport(self, what: str, exc: Exception, creates: bool | str, received: str) -> TransientError:
        unknown = not _never_sent(exc) and _names_create(creates, _failed_url(exc))
        kind = OutcomeUnknown if unknown else TransientError
        return kind(what, received=received, fix="check the network and run the same command again")


def _status(exc: Exception) -> int | None:
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


def _http_error_beneath(exc: Exception) -> Exception:
    """The HTTP error a client method caught and replaced by its own (its __context__), else exc itself."""
    if _status(exc) is not None:
        return exc
    seen, item = set(), exc.__cause__ or exc.__context__
    while item is not None and id(item) not in seen:
        seen.add(id(item))
        if _status(item) is not None and isinstance(item, Exception):
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


def _own_the_retries(api: Any) -> None:
    """Turn off the client's hidden retry loops, so KaggleSession.call is the only one (capped, injectable).

    with_retry (StartBlobUpload, CreateDataset, CreateDatasetVersion) sleeps any Retry-After for real and
    re-sends creates; upload_complete PUTs through urllib3's Retry, which also sleeps any Retry-After. The
    replacements run once and raise, and session.call decides (a refusal waits, capped; a lost create is
    reconciled by its caller)."""
    if not hasattr(api, "with_retry"):
        return
    api.with_retry = lambda func, *args, **kwargs: func
    api.upload_complete = lambda path, url, quiet, resume=False: _upload_complete(api, path, url, resume)


def _upload_complete(api: Any, path: str, url: str, resume: bool = False):
    """The client's upload_complete (one PUT of the file, resumed where the server says) without urllib3's
    retries: a 429/503 is raised (session.call waits, capped), a dropped connection too; another status is
    the client's FAILED."""
    import requests
    from kaggle.models.kaggle_models_extended import ResumableUploadResult

    size = os.path.getsize(path)
    start = 0
    if resume:
        resumed = api._resume_upload(path, url, size, True)
        if resumed.result != ResumableUploadResult.INCOMPLETE:
            return resumed.result
        start = resumed.start_at
    headers = {"Content-Length": str(size - start)}
    if start > 0:
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    with open(path, "rb") as handle:
        handle.seek(start)
        response = requests.put(url, data=handle, headers=headers, timeout=600)
    if response.status_code in (200, 201):
        return ResumableUploadResult.COMPLETE
    if response.status_code in TRANSIENT_STATUS:
        response.raise_for_status()
    return ResumableUploadResult.FAILED


def _build_api(creds: Credentials):
    """A KaggleApi that uses `creds` and nothing else: no import-time login state, no prompts."""
    endpoint = os.environ.get(ENDPOINT_ENV, "").rstrip("/")
    if endpoint:
        kaggle_env = require("kagglesdk.kaggle_env")
        kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = endpoint
        os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
    with contextlib.redirect_stdout(io.StringIO()):
        KaggleApi = require("kaggle.api.kaggle_api_extended").KaggleApi
    api = KaggleApi()
    api.args = [a for a in KaggleApi.args if a != "--local"] + (["--local"] if endpoint else [])
    values = {"username": creds.username}
    if creds.token:
        values["token"] = creds.token
    else:
        values["key"] = creds.key
    api.config_values = values
    api._authenticated = True
    return api


# ------------------------------------------------------------------------------ competition files
def download_competition(spec: CompetitionSpec, raw_dir: Path, force: bool = False,
                         session: KaggleSession | None = None) -> list[Path]:
    """Every file of the competition into raw_dir, as Kaggle serves it. A second run sends nothing.

    Files land in a staging folder first and are moved into raw_dir only when complete and of the listed
    size, so raw_dir never holds half a zip; a manifest beside raw_dir records what a complete fetch is.
    The staging folder is removed whatever happens: a failed download leaves nothing half-written behind.
    """
    manifest = raw_dir.parent / f"{raw_dir.name}.kaggle-files.json"
    if not force and _complete(manifest, raw_dir):
        return sorted(raw_dir.iterdir())
    session = session or KaggleSession()
    rules = spec.rules_url or f"https://www.kaggle.com/competitions/{spec.slug}/rules"
    files = list_competition_files(session, spec.slug, rules)
    wanted = [f for f in files if force or not _present(raw_dir / f["name"], f["size"])]
    _check_free_space(raw_dir, sum(f["size"] for f in wanted))
    staging = raw_dir.parent / f".{raw_dir.name}.download"
    remove_made(staging, "downloading", legacy=any_folder)  # a killed download's (its name is podium's)
    mark_made(staging, "downloading")
    try:
        for item in wanted:
            _download_one(session, spec.slug, item, staging, raw_dir, rules)
    finally:
        remove_made(staging, "downloading")
    write_json(manifest, {"competition": spec.slug, "files": files})
    return sorted(raw_dir.iterdir())


def list_competition_files(session: KaggleSession, slug: str, rules_url: str = "") -> list[dict[str, Any]]:
    """[{name, size}] for every file, all pages."""
    files, token = [], None
    while True:
        response = session.call(f"listing the files of competition '{slug}'", session.api.competition_list_files,
                                slug, page_token=token, page_size=200, rules_url=rules_url)
        for item in response.files or []:
            files.append({"name": _safe_name(item.name), "size": int(item.total_bytes or 0)})
        token = response.next_page_token
        if not token:
            return files


def _download_one(session: KaggleSession, slug: str, item: dict[str, Any], staging: Path, raw_dir: Path,
                  rules_url: str) -> None:
    landing = staging / "incoming"
    remove_made(landing, "downloading", legacy=any_folder)  # inside the marked staging folder; files only
    landing.mkdir(parents=True)
    session.call(f"downloading {item['name']} of competition '{slug}'", _fetch_data_file, session.api, slug,
                 item["name"], landing, rules_url=rules_url)
    got = [p for p in landing.iterdir() if p.is_file() and not p.name.endswith(".kaggle-partial")]
    if len(got) != 1 or (item["size"] and got[0].stat().st_size != item["size"]):
        raise PodiumError(f"The download of {item['name']} is incomplete.", expected=f"{item['size']} bytes",
                          received=", ".join(f"{p.name} ({p.stat().st_size} bytes)" for p in got) or "no file",
                          fix="run the same command again")
    target = raw_dir / item["name"]
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(got[0], target)


def _fetch_data_file(api: Any, slug: str, name: str, landing: Path) -> None:
    """What the client's competition_download_file does (DownloadDataFile answers a 302 to a signed storage
    URL; the body is streamed to a file), but with the client's own retry loop off (max_retries=0): that
    loop sleeps for real, up to a minute a time, and re-raises unclassified. podium's RetryPolicy retries
    instead, and a retry resumes from the bytes already in `landing` (the client's Range + If-Range,
    keyed by the ETag it recorded), asking for a fresh link each time."""
    from kagglesdk.competitions.types.competition_api_service import ApiDownloadDataFileRequest

    with api.build_kaggle_client() as kaggle:
        request = ApiDownloadDataFileRequest()
        request.competition_name, request.file_name = slug, name
        response = kaggle.competitions.competition_api_client.download_data_file(request)
        try:
            outfile = landing / response.request.url.split("?")[0].split("/")[-1]
            api.download_file(response, str(outfile), None, quiet=True, resume=True, max_retries=0)
        finally:
            response.close()


def _safe_name(name: str) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not name:
        raise PodiumError("Kaggle listed a file with an unsafe name.", expected="a relative path",
                          received=repr(name), fix="report it; podium will not write outside data/raw")
    return name


def _present(path: Path, size: int) -> bool:
    return path.is_file() and (not size or path.stat().st_size == size)


def _complete(manifest: Path, raw_dir: Path) -> bool:
    if not manifest.is_file():
        return False
    listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    return bool(listed) and all(_present(raw_dir / f["name"], f["size"]) for f in listed)


def _check_free_space(raw_dir: Path, needed: int) -> None:
    check_free_space(raw_dir, 1.05 * needed + 64 * 2**20, "downloading the competition",
                     "free some space or set data_dir elsewhere")


# ------------------------------------------------------------------------------------ submissions
SUBMISSIONS_PAGE = 100  # rows asked per ListSubmissions page (Kaggle may answer fewer: the token decides)
MAX_PAGES = 1000  # a list longer than this is a server that pages in a loop


def list_submissions(session: KaggleSession, slug: str) -> list[dict[str, Any]]:
    """Every submission, newest first, as plain dicts (ref, description, status, public_score, error), read
    page by page until Kaggle gives no next page token (the client's competition_submissions reads one page)."""
    return [row for page in submission_pages(session, slug) for row in page]


def find_submission(session: KaggleSession, slug: str, marker: str) -> dict[str, Any] | None:
    """The submission whose description holds `marker`, looked for on every page; None when no page has it."""
    for page in submission_pages(session, slug):
        for row in page:
            if marker in row["description"]:
                return row
    return None


def submission_pages(session: KaggleSession, slug: str):
    """The submissions list one page at a time (ListSubmissions with pageToken / nextPageToken)."""
    from kagglesdk.competitions.types.competition_api_service import ApiListSubmissionsRequest

    def one_page(token: str):
        with session.api.build_kaggle_client() as kaggle:
            request = ApiListSubmissionsRequest()
            request.competition_name, request.page_size = slug, SUBMISSIONS_PAGE
            if token:
                request.page_token = token
            else:
                request.page = 1
            return kaggle.competitions.competition_api_client.list_submissions(request)

    seen: set[str] = set()
    token = ""
    for number in range(1, MAX_PAGES + 1):
        response = session.call(f"listing submissions of '{slug}' (page {number})", one_page, token,
                                rules_url=f"https://www.kaggle.com/competitions/{slug}/rules")
        yield [{"ref": row.ref, "description": row.description or "", "status": row.status.name,
                "public_score": row.public_score or "", "error": row.error_description or "",
                "file_name": row.file_name or ""} for row in (response.submissions or []) if row is not None]
        token = response.next_page_token or ""
        if not token:
            return
        if token in seen:
            raise TransientError(f"Kaggle's submissions list of '{slug}' pages in a loop.",
                                 expected="a new page token or none", received=f"page token {token!r} again",
                                 fix="run the same command again later")
        seen.add(token)
    raise TransientError(f"Kaggle's submissions list of '{slug}' has more than {MAX_PAGES} pages.",
                         expected="a last page", received=f"{MAX_PAGES} pages, each with a next page token",
                         fix="run the same command again later")


def send_submission(session: KaggleSession, slug: str, path: Path, message: str) -> int:
    """StartSubmissionUpload, PUT the file, CreateSubmission. Raises OutcomeUnknown if the line dropped."""
    response = session.call(f"submitting {path.name} to '{slug}'", session.api.competition_submit, str(path),
                            message, slug, quiet=True, creates="CreateSubmission",
                            rules_url=f"https://www.kaggle.com/competitions/{slug}/rules")
    if response.message == session.api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise TransientError(f"The upload of {path.name} did not complete; nothing was submitted.",
                             received=response.message, fix="run the same command again")
    return _created_ref(session, response, f"submitting {path.name} to '{slug}'")


def _created_ref(session: KaggleSession, response: Any, what: str) -> int:
    """The submission reference of a create's answer. An answer without one, and without Kaggle's reason,
    is an answer podium cannot read: Kaggle may have acted, so the outcome is unknown (never "not sent")."""
    try:
        ref = int(response.ref or 0)
    except (TypeError, ValueError):
        ref = 0
    if ref > 0:
        return ref
    raise OutcomeUnknown(f"Kaggle's answer named no submission while {what}.", expected="a submission reference",
                         received=session.creds.redact(f"HTTP 200, message {response.message or ''!r}, ref "
                                                       f"{response.ref!r}")[:300],
                         fix="run the same command again: it asks Kaggle for this submission before sending")


def send_code_submission(session: KaggleSession, slug: str, kernel_ref: str, version: int, message: str,
                         file_name: str = "submission.csv") -> int:
    """CreateCodeSubmission (the client's competition_submit_code): Kaggle re-runs that kernel version on the
    hidden test set and scores the `file_name` it writes. Raises OutcomeUnknown if the line dropped."""
    response = session.call(f"submitting kernel {kernel_ref} version {version} to '{slug}'",
                            session.api.competition_submit_code, file_name, message, slug, kernel_ref, int(version),
                            quiet=True, creates="CreateCodeSubmission",
                            rules_url=f"https://www.kaggle.com/competitions/{slug}/rules")
    # a refusal comes as an HTTP error (classified in call); a 200 without a reference is an answer that
    # cannot be read, whatever its message says: unknown, looked for before anything is sent again
    return _created_ref(session, response, f"submitting kernel {kernel_ref} version {version} to '{slug}'")


# --------------------------------------------------------------------------------- datasets, kernels
def dataset_exists(session: KaggleSession, ref: str) -> bool:
    return session.call(f"checking dataset {ref}", session.api.dataset_status, ref, missing_ok=True) is not None


def create_or_version_dataset(session: KaggleSession, folder: Path, notes: str) -> str:
    """Upload `folder` (with its dataset-metadata.json) as a new dataset, or a new version of it."""
    ref = json.loads((folder / "dataset-metadata.json").read_text(encoding="utf-8"))["id"]
    if dataset_exists(session, ref):
        try:
            result = session.call(f"versioning dataset {ref}", session.api.dataset_create_version, str(folder),
                                  notes, quiet=True, dir_mode="zip", creates="CreateDatasetVersion")
        except OutcomeUnknown as exc:  # re-sending could add a second, identical version: say so, do not
            raise PodiumError(f"The new version of dataset {ref} got no answer; it may exist.",
                              received=exc.received, fix="run the same command again: at worst it adds one more "
                                                         "version with the same files (no GPU run is started)") from exc
    else:
        try:
            result = session.call(f"creating dataset {ref}", session.api.dataset_create_new, str(folder),
                                  public=False, quiet=True, dir_mode="zip", creates="CreateDataset")
        except OutcomeUnknown:
            if not dataset_exists(session, ref):  # the create did not land; a re-run creates it
                raise
            return ref  # it did land: adopt it (re-sending would be refused as "already in use")
        if result.error and dataset_exists(session, ref):
            # absent a moment ago, there now: the client's own retry (with_retry) re-sent a CreateDataset
            # whose answer was lost, and Kaggle refused the second as "already in use". The first one is ours.
            return ref
    if result.error:
        raise PodiumError(f"Kaggle did not accept dataset {ref}.", received=session.creds.redact(result.error),
                          fix="fix the metadata in " + str(folder / "dataset-metadata.json"))
    return ref


def push_kernel(session: KaggleSession, folder: Path, timeout_seconds: int = 0) -> dict[str, Any]:
    """SaveKernel from kernels/<name>/; returns {ref, version, url, invalid_sources}.

    `timeout_seconds` > 0 goes out as sessionTimeoutSeconds (the client's `timeout` argument; the client
    does not read it from kernel-metadata.json). Kaggle still creates and starts the version when some
    sources are invalid (it drops them), so those come back in `invalid_sources` with the version: the
    caller must record the run before refusing it.
    """
    timeout = str(int(timeout_seconds)) if timeout_seconds and timeout_seconds > 0 else None
    response = session.call(f"pushing kernel {folder}", session.api.kernels_push, str(folder), timeout,
                            creates=True)
    invalid = (list(response.invalid_dataset_sources or []) + list(response.invalid_competition_sources or [])
               + list(response.invalid_kernel_sources or []) + list(response.invalid_model_sources or []))
    if response.error:
        raise PodiumError("Kaggle did not accept the kernel.", expected="valid metadata and sources",
                          received=f"Kaggle said {session.creds.redact(response.error)!r}",
                          fix=f"fix {folder / 'kernel-metadata.json'} (sources must exist and be visible to you)")
    if not response.version_number:  # answered, but not readably: a version may have started
        raise OutcomeUnknown(f"Kaggle's answer to the push of {folder} named no version.",
                             expected="a version number", received=session.creds.redact(
                                 f"HTTP 200, ref {response.ref!r}, no versionNumber")[:300],
                             fix="run make push again: it looks for this push's version on Kaggle first")
    return {"ref": response.ref, "version": response.version_number, "url": response.url,
            "invalid_sources": invalid}


def kernel_version(session: KaggleSession, ref: str, version: int | None = None) -> tuple[int, str] | None:
    """(version number, source text) of the kernel's latest version, or of `version`; None when absent.

    GetKernel is what `kaggle kernels pull` reads (ref/<version> picks a version). The pinned client has no
    version listing, but the source text carries podium's RUN_TOKEN, so this is how a push whose answer
    was lost is found.
    """
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    owner, slug = ref.split("/", 1)

    def get():
        with session.api.build_kaggle_client() as kaggle:
            request = ApiGetKernelRequest()
            request.user_name = owner
            request.kernel_slug = f"{slug}/{version}" if version else slug
            return kaggle.kernels.kernels_api_client.get_kernel(request)

    what = f"reading kernel {ref}" + (f" version {version}" if version else "")
    response = session.call(what, get, missing_ok=True)
    if response is None or response.metadata is None:
        return None
    number = version or int(response.metadata.current_version_number or 0)
    return number, (response.blob.source if response.blob is not None else "") or ""


def kernel_exists(session: KaggleSession, ref: str) -> bool:
    """A kernel source is usable only if it exists and this account can see it."""
    return kernel_version(session, ref) is not None


def kernel_status(session: KaggleSession, ref: str) -> tuple[str, str]:
    """(QUEUED|RUNNING|COMPLETE|ERROR|CANCEL_*, failure message) of the kernel's latest session."""
    response = session.call(f"reading the status of kernel {ref}", session.api.kernels_status, ref)
    return response.status.name, response.failure_message or ""


def kernel_output_files(session: KaggleSession, ref: str) -> tuple[list[tuple[str, str]], str]:
    """[(file name, download url)] of the latest session's outputs, and its log."""
    from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

    owner, slug = ref.split("/", 1)

    def one_page(token: str | None):
        with session.api.build_kaggle_client() as kaggle:
            request = ApiListKernelSessionOutputRequest()
            request.user_name, request.kernel_slug, request.page_size = owner, slug, 100
            if token:
                request.page_token = token
            return kaggle.kernels.kernels_api_client.list_kernel_session_output(request)

    files, log, token = [], "", None
    while True:
        response = session.call(f"listing the outputs of kernel {ref}", one_page, token)
        files += [(item.file_name, item.url) for item in response.files or []]
        log = log or (response.log or "")
        token = response.next_page_token
        if not token:
            return files, log
