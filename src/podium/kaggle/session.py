"""One authenticated session with Kaggle, and podium's retries: the only retry loop.

The official client logs in at import and exits on failure, so it is imported lazily, after podium has
found the credentials itself (podium.kaggle.credentials), and that import-time login sends no request
(_import_sends_nothing): podium alone introspects a token. Every call goes through `KaggleSession.call`,
which retries what is safe to retry (429 after Retry-After, 5xx and dropped connections with exponential
backoff, both bounded and with an injectable sleep) and turns everything else into a PodiumError naming
the fix (podium.kaggle.faults says which is which).

A call that creates something (a submission, a kernel version) is never retried blindly after a dropped
connection: the server may have acted before the connection died. Such calls raise `OutcomeUnknown`,
and the caller reconciles (kaggle/submit.py looks for its token in the submissions list before sending again).
The same holds for an answer that arrived but cannot be read (cut JSON, an HTML page with status 200):
Kaggle answered, so it may have acted. What certainly did nothing (a 429/503 refusal, a connection never
made) is retried here, for every call, creating ones included (SaveKernel's 429 too).

This is the only retry loop: the client's own (`with_retry`, urllib3's Retry on upload PUTs) sleep any
Retry-After, an hour included, so the session turns them off (see _own_the_retries); a Retry-After over
`RetryPolicy.max_retry_after` is refused with Kaggle's words, on every call.

PODIUM_KAGGLE_ENDPOINT=http://host:port points the client's LOCALHOST entry of its endpoint table there
(the only endpoint knob the pinned client has is KAGGLE_API_ENVIRONMENT, whose local entries have fixed
ports); the tests use it to reach the local stand-in.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from podium.backoff import exponential_wait, waits_within
from podium.errors import PodiumError
from podium.extras import require
from podium.kaggle.credentials import Credentials, find_credentials
from podium.kaggle.faults import TRANSIENT_STATUS, OutcomeUnknown, TransientError, classify, http_error_beneath, \
    status_of

ENDPOINT_ENV = "PODIUM_KAGGLE_ENDPOINT"


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
                exc = http_error_beneath(exc)  # a client-made error over Kaggle's answer: Kaggle's answer
                if missing_ok and status_of(exc) == 404:
                    return None
                problem = classify(exc, what, creates, rules_url, self.creds, self.retry.clock)
                # retried: what certainly did nothing (a refusal, a connection never made); never a create
                # whose outcome is unknown (the caller asks Kaggle first)
                if not isinstance(problem, TransientError) or isinstance(problem, OutcomeUnknown) \
                        or attempt + 1 >= self.retry.attempts:
                    raise problem from exc
                self.retry.pause(what, attempt, problem.retry_after, problem.received)
                attempt += 1


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
    with contextlib.redirect_stdout(io.StringIO()), _import_sends_nothing():
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


@contextlib.contextmanager
def _import_sends_nothing():
    """The first `import kaggle` of a process sends no request.

    kaggle/__init__.py logs in at import (KaggleApi().authenticate(), every error swallowed): with
    KAGGLE_API_TOKEN (or ~/.kaggle/access_token) it asks Kaggle to introspect the token, which KaggleSession
    then does again, with OAuth credentials it refreshes them; outside podium's retries and messages, and
    only in the process's first session. Podium logs in itself, so while the client is first imported its
    HTTP client refuses every request and that login gives up quietly."""
    try:
        http_client = None if "kaggle" in sys.modules else \
            importlib.import_module("kagglesdk.kaggle_http_client").KaggleHttpClient
    except ImportError:
        http_client = None  # the client's import that follows names the missing extra (podium.extras)
    if http_client is None:
        yield
        return
    send = http_client.call

    def refuse(*args, **kwargs):
        raise RuntimeError("podium: no request while the kaggle client is imported (podium logs in itself)")

    http_client.call = refuse
    try:
        yield
    finally:
        http_client.call = send
