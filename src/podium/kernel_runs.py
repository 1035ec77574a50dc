"""`make push / status / output`: one rendered kernel's life on Kaggle, remembered in kernels/<slug>/push.json.

An older finished version must never pass for the new run. Kaggle's status call names no version, and
right after a push it can still report the previous run's COMPLETE. So a terminal state is believed only
after this push has been seen queued or running, or after `stale_grace` seconds; and the outputs carry
the token rendered into the script (podium-run.json), which must match the pushed one.
Outputs are checked before they land in runs/<slug>-v<version>/: a 4xx/5xx answer or an HTML/JSON error
page saved under a data file's name is rejected, and nothing is kept from a download that had one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from podium import kaggle_api
from podium.errors import PodiumError
from podium.io import write_json, write_text

ACTIVE = {"QUEUED", "RUNNING", "NEW_SCRIPT", "CANCEL_REQUESTED"}
TERMINAL = {"COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED"}
MAGIC = {".png": b"\x89PNG", ".keras": b"PK", ".zip": b"PK", ".h5": b"\x89HDF", ".npy": b"\x93NUMPY",
         ".parquet": b"PAR1", ".jpg": b"\xff\xd8", ".jpeg": b"\xff\xd8"}


@dataclass
class StatusPolicy:
    timeout: float = 6 * 3600.0
    interval: float = 15.0
    max_interval: float = 300.0
    factor: float = 1.5
    stale_grace: float = 120.0  # after this long, a terminal state is believed even if never seen running
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


# -------------------------------------------------------------------------------------------- push
def publish_weights(session: kaggle_api.KaggleSession, folder: Path) -> str | None:
    """Create or version the weights dataset, only when its content changed since the last upload."""
    record = folder.with_name(f"{folder.name}.uploaded.json")
    digest = _folder_digest(folder)
    if record.is_file() and json.loads(record.read_text())["digest"] == digest:
        return None
    ref = kaggle_api.create_or_version_dataset(session, folder, notes=f"podium weights {digest[:12]}")
    write_json(record, {"ref": ref, "digest": digest})
    return ref


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode())
        digest.update(str(path.stat().st_size).encode())
        digest.update(str(int(path.stat().st_mtime)).encode())
    return digest.hexdigest()


def push(session: kaggle_api.KaggleSession, folder: Path, clock: Callable[[], float] = time.time) -> dict:
    """SaveKernel from the rendered folder; remembers ref, version, token and time in push.json."""
    rendered = folder / "podium-kernel.json"
    if not rendered.is_file():
        raise PodiumError(f"{folder} is not a rendered kernel.", expected=str(rendered), received="no such file",
                          fix="make kernel EXP=<config> first")
    result = kaggle_api.push_kernel(session, folder)
    state = {**result, "token": json.loads(rendered.read_text())["token"], "pushed_at": clock(),
             "seen_active": False, "status": "PUSHED"}
    write_json(folder / "push.json", state)
    return state


def read_push(folder: Path) -> dict:
    path = folder / "push.json"
    if not path.is_file():
        raise PodiumError(f"Kernel {folder} has not been pushed.", expected=str(path), received="no such file",
                          fix="make push EXP=<config>")
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ status
@dataclass
class KernelState:
    ref: str
    version: int
    status: str
    failure: str = ""
    finished: bool = False
    history: list[str] = field(default_factory=list)


def wait_for_kernel(session: kaggle_api.KaggleSession, folder: Path, policy: StatusPolicy | None = None,
                    on_progress: Callable[[KernelState, float], None] | None = None) -> KernelState:
    """Poll with backoff until this push's run finishes or policy.timeout passes (then finished=False)."""
    policy = policy or StatusPolicy()
    pushed = read_push(folder)
    state = KernelState(pushed["ref"], pushed["version"], "PUSHED")
    started, interval = policy.clock(), policy.interval
    while True:
        status, failure = kaggle_api.kernel_status(session, pushed["ref"])
        if status in ACTIVE and not pushed["seen_active"]:
            pushed["seen_active"] = True
            write_json(folder / "push.json", pushed)
        believed = pushed["seen_active"] or policy.clock() - pushed["pushed_at"] > policy.stale_grace
        state.status = status if status not in TERMINAL or believed else f"WAITING (Kaggle still shows {status} " \
                                                                          "of an earlier version)"
        state.failure, state.finished = failure, status in TERMINAL and believed
        state.history.append(status if state.status == status else f"{status} (earlier version)")
        elapsed = policy.clock() - started
        if on_progress:
            on_progress(state, elapsed)
        if state.finished:
            pushed["status"] = status
            write_json(folder / "push.json", pushed)
            return state
        if elapsed + interval > policy.timeout:
            return state
        policy.sleep(interval)
        interval = min(interval * policy.factor, policy.max_interval)


# ------------------------------------------------------------------------------------------ output
@dataclass
class OutputSummary:
    run_dir: Path
    files: list[str]
    run_record: dict


def kernel_run_id(pushed: dict) -> str:
    return f"{pushed['ref'].split('/')[1]}-v{pushed['version']}"


def download_output(session: kaggle_api.KaggleSession, folder: Path, runs_dir: str | Path = "runs",
                    get: Callable | None = None) -> OutputSummary:
    """The finished run's outputs into runs/<slug>-v<version>/, all checked; error pages rejected."""
    import requests

    pushed = read_push(folder)
    if pushed.get("status") not in TERMINAL:
        raise PodiumError(f"Kernel {pushed['ref']} version {pushed['version']} has not finished (as far as podium "
                          "has seen).", expected="status COMPLETE", received=pushed.get("status", "unknown"),
                          fix="make status EXP=<config> first")
    files, log = kaggle_api.kernel_output_files(session, pushed["ref"])
    run_dir = Path(runs_dir) / kernel_run_id(pushed)
    staging = run_dir.with_name(f".{run_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    get = get or (lambda url: requests.get(url, timeout=300))
    rejected, saved = [], []
    try:
        for name, url in files:
            target = staging / _safe_output_name(name)
            response = session.call(f"downloading output {name}", _fetch, get, url)
            problem = error_page_reason(name, response.status_code, response.headers.get("Content-Type", ""),
                                        response.content)
            if problem:
                rejected.append(f"{name}: {problem}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response.content)
            saved.append(name)
        if log:
            write_text(staging / "kernel.log", session.creds.redact(log))
        if rejected:
            raise PodiumError(f"{len(rejected)} output file(s) of {pushed['ref']} came back as error pages.",
                              expected="the files the kernel wrote", received="; ".join(rejected[:5]),
                              fix="run make output again later; nothing was written to " + str(run_dir))
        record = _check_run_record(staging, pushed)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        os.replace(staging, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OutputSummary(run_dir, saved, record)


def _fetch(get: Callable, url: str):
    response = get(url)
    if response.status_code in kaggle_api.TRANSIENT_STATUS:
        response.raise_for_status()  # retried by session.call
    return response


def _check_run_record(staging: Path, pushed: dict) -> dict:
    path = staging / "podium-run.json"
    if not path.is_file():
        return {}
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("token") != pushed["token"]:
        raise PodiumError(f"The outputs of {pushed['ref']} belong to another run than the one pushed.",
                          expected=f"run token {pushed['token']}", received=f"token {record.get('token')}",
                          fix="wait for the new version (make status), then make output again")
    return record


def _safe_output_name(name: str) -> str:
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts:
        raise PodiumError("Kaggle listed an output with an unsafe name.", expected="a relative path",
                          received=repr(name), fix="report it; podium writes only inside runs/")
    return str(pure)


def error_page_reason(name: str, status: int, content_type: str, data: bytes) -> str:
    """Why this download is an error page and not the file `name`; "" when it looks like the file."""
    suffix = PurePosixPath(name).suffix.lower()
    head = data[:512].lstrip().lower()
    if status != 200:
        return f"HTTP {status}"
    if suffix not in (".html", ".htm") and ("text/html" in content_type.lower()
                                             or head.startswith((b"<!doctype html", b"<html"))):
        return "an HTML page"
    if suffix == ".json" or "application/json" in content_type.lower():
        try:
            parsed = json.loads(data or b"null")
        except ValueError:
            return "not valid JSON" if suffix == ".json" else ""
        if isinstance(parsed, dict) and isinstance(parsed.get("code"), int) and parsed["code"] >= 400 \
                and "message" in parsed:
            return f"a JSON error ({parsed['code']}: {str(parsed['message'])[:80]})"
    magic = MAGIC.get(suffix)
    if magic and not data.startswith(magic):
        return f"not a {suffix} file (starts with {data[:8]!r})"
    return ""
