"""`make push / status / output`: one rendered kernel's life on Kaggle, remembered in kernels/<slug>/push.json;
and publish_dataset, which puts a folder (a trained run, weights) on Kaggle as a private dataset.

A push starts a paid GPU run, so it is sent once: push.json says OUTCOME_UNKNOWN before sending, and a lost
answer is settled by finding the version that carries this push's fresh run token (reconcile_push).

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
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from podium.kaggle import client as kaggle_api
from podium.backoff import Clock, PollSchedule, Polling
from podium.errors import PodiumError
from podium.paths import any_folder, is_made, mark_made, remove_made
from podium.io import hash_file, write_json, write_text
from podium.kaggle.kernels import RUN_RECORD_KEYS

ACTIVE = {"QUEUED", "RUNNING", "NEW_SCRIPT", "CANCEL_REQUESTED"}
TERMINAL = {"COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED"}
FAILED = {"ERROR", "CANCEL_ACKNOWLEDGED"}
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # push.json's status from before SaveKernel is sent until its answer
_TOKEN_LINE = re.compile(r'^RUN_TOKEN = "([0-9a-f]*)"$', re.MULTILINE)
MAGIC = {".png": b"\x89PNG", ".keras": b"PK", ".zip": b"PK", ".h5": b"\x89HDF", ".npy": b"\x93NUMPY",
         ".parquet": b"PAR1", ".jpg": b"\xff\xd8", ".jpeg": b"\xff\xd8"}


@dataclass
class StatusPolicy(PollSchedule):
    """How long to wait for a kernel run: up to 6 h, checks 15 s apart growing to 5 min (wall clock, as
    push.json's pushed_at)."""

    timeout: float = 6 * 3600.0
    interval: float = 15.0
    max_interval: float = 300.0
    clock: Clock = time.time
    stale_grace: float = 120.0  # after this long, a terminal state is believed even if never seen running


# ---------------------------------------------------------------------------------------- datasets
DATASET_METADATA = "dataset-metadata.json"
NOT_UPLOADED_DIRS = {".git", ".cache", ".huggingface"}  # the pinned client's DEFAULT_IGNORE_PATTERNS
NOT_UPLOADED_FILES = {DATASET_METADATA, "datapackage.json", "kernel-metadata.json", "model-metadata.json",
                      "model-instance-metadata.json"}


def publish_dataset(session: kaggle_api.KaggleSession, folder: Path, notes: str) -> str | None:
    """Publish `folder` as a private Kaggle dataset: created the first time, a new version when its content
    changed, nothing sent at all when unchanged. Returns the dataset ref ("owner/slug"), or None when skipped.

    `folder` holds dataset-metadata.json ({"id": "owner/slug", "title": 6-50 characters,
    "licenses": [{"name": "CC0-1.0"}]}) and the files, subfolders included (e.g. <run_id>/fold-0/best.keras):
    the pinned client uploads each top-level subfolder as <name>.zip (dir_mode="zip"), which Kaggle unpacks,
    so the kernel sees /kaggle/input/<slug>/<run_id>/fold-0/best.keras. `notes` become the version notes
    (the content hash is appended). What was last published is remembered beside the folder in
    <folder>.uploaded.json ({ref, digest}); the digest is content_digest(folder). The record skips an upload
    only while Kaggle still has that dataset (one GetDatasetStatus): a dataset deleted on Kaggle is uploaded
    again.
    """
    meta_path = folder / DATASET_METADATA
    if not meta_path.is_file():
        raise PodiumError(f"{folder} has no dataset metadata.", expected=str(meta_path), received="no such file",
                          fix='write {"id": "owner/slug", "title": ..., "licenses": [{"name": "CC0-1.0"}]} there')
    ref = str(json.loads(meta_path.read_text(encoding="utf-8")).get("id", ""))
    if ref.count("/") != 1 or not all(ref.split("/")):
        raise PodiumError(f"The dataset id in {meta_path} is not owner/slug.", expected="owner/slug",
                          received=repr(ref), fix="set id to <your user name>/<dataset slug>")
    digest = content_digest(folder)
    record = folder.with_name(f"{folder.name}.uploaded.json")
    if record.is_file():
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}  # a damaged record says nothing: upload (a version with the same files at worst)
        # the record is a local belief: Kaggle is asked whether it still has the dataset (deleted there, or
        # another account's credentials now) before anything is skipped
        if isinstance(previous, dict) and previous.get("ref") == ref and previous.get("digest") == digest \
                and kaggle_api.dataset_exists(session, ref):
            return None
    kaggle_api.create_or_version_dataset(session, folder, notes=f"{notes} (content {digest[:12]})".strip())
    write_json(record, {"ref": ref, "digest": digest})
    return ref


def publish_weights(session: kaggle_api.KaggleSession, folder: Path) -> str | None:
    """The weights dataset of an internet-off kernel; see publish_dataset."""
    return publish_dataset(session, folder, notes="podium weights")


def content_digest(folder: Path) -> str:
    """sha256 over every uploaded file's relative path, size and bytes (streamed), in sorted order.

    A real content hash: touching a file or copying the folder does not change it; one changed byte does.
    """
    digest = hashlib.sha256()
    files = _uploaded_files(folder)
    if not files:
        raise PodiumError(f"{folder} has nothing to publish.", expected="files beside dataset-metadata.json",
                          received="no files", fix="put the files to publish in " + str(folder))
    for path in files:
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        hash_file(digest, path)
    return digest.hexdigest()


def _uploaded_files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in NOT_UPLOADED_DIRS)
        for name in names:
            path = Path(root) / name
            if root == str(folder) and (name in NOT_UPLOADED_FILES or name.startswith("dataset-cover-image")):
                continue
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


# -------------------------------------------------------------------------------------------- push
@dataclass
class ReconcilePolicy:
    """How long a push whose answer was lost is looked for on Kaggle before podium says it is not there.

    Checks run at once, then after each of `waits`, but only while the push is younger than `window`
    seconds: a `make push` / `make status` long after the lost push checks once.
    """

    waits: tuple[float, ...] = (5.0, 15.0, 30.0)
    window: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


def push(session: kaggle_api.KaggleSession, folder: Path, clock: Callable[[], float] | None = None,
         policy: ReconcilePolicy | None = None) -> dict:
    """SaveKernel from the rendered folder, started exactly once; remembered in push.json.

    Every push carries a fresh run token, stamped into the script (RUN_TOKEN) and podium-kernel.json just
    before sending, so the outputs of one version are never taken for another's. push.json is written with
    status OUTCOME_UNKNOWN before sending: if the answer is lost (or podium dies), the next `make push` or
    `make status` first looks for a kernel version carrying that token and adopts it, and sends nothing.
    Kernel sources are checked before sending (Kaggle would start the run without an invalid one).
    """
    policy = policy or ReconcilePolicy()
    clock = clock or policy.clock
    rendered = folder / "podium-kernel.json"
    if not rendered.is_file():
        raise PodiumError(f"{folder} is not a rendered kernel.", expected=str(rendered), received="no such file",
                          fix="make kernel EXP=<config> first")
    previous = _read_push_or_none(folder)
    if previous and previous.get("status") == OUTCOME_UNKNOWN:
        adopted = reconcile_push(session, folder, previous, policy)
        if adopted is not None:
            return adopted  # the lost push did start a run: adopt it, start no second one
    meta = json.loads((folder / "kernel-metadata.json").read_text(encoding="utf-8"))
    _check_kernel_sources(session, folder, meta)
    state = _new_push(folder, meta, json.loads(rendered.read_text(encoding="utf-8")), previous, clock())
    write_json(folder / "push.json", state)  # before sending: a lost answer is reconciled, never re-sent
    try:
        result = kaggle_api.push_kernel(session, folder, state["timeout_seconds"])
    except kaggle_api.OutcomeUnknown as exc:  # a lost or unreadable answer, a 5xx: Kaggle may have acted
        return _settle_lost_push(session, folder, state, policy, exc)
    except PodiumError:
        # Kaggle refused (a 4xx, a 429 retried until refused for good, a connection never made): nothing was
        # created, so push.json goes back to what it said before
        _restore_push(folder, previous)
        raise
    return _record_pushed(folder, state, result)


def _new_push(folder: Path, meta: dict, made_from: dict, previous: dict | None, now: float) -> dict:
    """push.json of a push about to be sent: a fresh token stamped into the script, status OUTCOME_UNKNOWN."""
    token = restamp_token(folder, meta.get("code_file", ""))
    return {"ref": meta["id"], "version": None, "url": "", "token": token, "pushed_at": now,
            "seen_active": False, "status": OUTCOME_UNKNOWN,
            "timeout_seconds": int(made_from.get("timeout_seconds") or 0),
            "previous_version": (previous or {}).get("version") or (previous or {}).get("previous_version"),
            # what this version runs: make submit compares it with the run it is asked to submit
            **{key: made_from[key] for key in RUN_RECORD_KEYS if key in made_from}}


def _settle_lost_push(session: kaggle_api.KaggleSession, folder: Path, state: dict, policy: ReconcilePolicy,
                      exc: kaggle_api.OutcomeUnknown) -> dict:
    """A push whose answer was lost: the version carrying its token when Kaggle shows one, else an error."""
    adopted = _reconcile_quietly(session, folder, state, policy)
    if adopted is not None:
        return adopted
    raise PodiumError(f"The push of {state['ref']} got no answer, and Kaggle shows no version carrying its "
                      f"token {state['token']} (yet).", expected="an answer to SaveKernel", received=exc.received,
                      fix="run make push EXP=... again when the network works: it first looks for this push "
                          "on Kaggle and sends only if it is still not there (make status looks too)") from exc


def _record_pushed(folder: Path, state: dict, result: dict) -> dict:
    """push.json of a push Kaggle answered; refused (after recording it) when Kaggle dropped a source."""
    answered = str(result["ref"] or "").strip("/")
    state.update(version=result["version"], url=result["url"], status="PUSHED",
                 ref=answered if answered.count("/") == 1 else state["ref"])  # owner/slug, whatever the form
    if result["invalid_sources"]:
        state["invalid_sources"] = result["invalid_sources"]
        write_json(folder / "push.json", state)
        raise PodiumError(f"Kaggle started {state['ref']} version {state['version']} without some of its sources "
                          "(it drops invalid ones).", expected="every source in kernel-metadata.json",
                          received="invalid: " + ", ".join(result["invalid_sources"]),
                          fix=f"stop that run on {state['url']}, fix {folder / 'kernel-metadata.json'} "
                              "(sources must exist and be visible to you), then make push")
    write_json(folder / "push.json", state)
    return state


def restamp_token(folder: Path, code_file: str) -> str:
    """A fresh RUN_TOKEN in the script's `RUN_TOKEN = "<hex>"` line and in podium-kernel.json (each atomic)."""
    script = folder / (code_file or "podium_kernel.py")
    text = script.read_text(encoding="utf-8") if script.is_file() else ""
    token = secrets.token_hex(8)
    stamped, count = _TOKEN_LINE.subn(f'RUN_TOKEN = "{token}"', text)
    if count != 1:
        raise PodiumError(f"{script} does not look like a script podium rendered.",
                          expected='exactly one line RUN_TOKEN = "<hex>"', received=f"{count} such lines",
                          fix="make kernel EXP=<config> to render it again")
    write_text(script, stamped)
    rendered = folder / "podium-kernel.json"
    write_json(rendered, {**json.loads(rendered.read_text(encoding="utf-8")), "token": token})
    return token


def reconcile_push(session: kaggle_api.KaggleSession, folder: Path, state: dict,
                   policy: ReconcilePolicy | None = None) -> dict | None:
    """Adopt the kernel version that carries this push's token (push.json updated); None when Kaggle shows none.

    The pinned client lists no versions, but GetKernel gives the latest version's number and source, and
    <ref>/<n> any older one; the token is in the source. Versions since the one pushed before are searched.
    """
    policy = policy or ReconcilePolicy()
    for wait in (0.0, *policy.waits):
        if wait:
            if policy.clock() - float(state.get("pushed_at") or 0.0) >= policy.window:
                break
            policy.sleep(wait)
        version = _version_with_token(session, state["ref"], state["token"], state.get("previous_version"))
        if version is not None:
            state.update(version=version, status="PUSHED", adopted=True,
                         url=state.get("url") or f"https://www.kaggle.com/code/{state['ref']}")
            write_json(folder / "push.json", state)
            return state
    return None


def _version_with_token(session: kaggle_api.KaggleSession, ref: str, token: str, previous: int | None
                        ) -> int | None:
    latest = kaggle_api.kernel_version(session, ref)
    if latest is None:
        return None
    number, source = latest
    if token and token in source:
        return number
    first = max(int(previous or 0) + 1, number - 5)  # bounded: a few versions pushed since, at most
    for older in range(number - 1, first - 1, -1):
        found = kaggle_api.kernel_version(session, ref, older)
        if found is not None and token in found[1]:
            return older
    return None


def _reconcile_quietly(session, folder: Path, state: dict, policy: ReconcilePolicy) -> dict | None:
    try:
        return reconcile_push(session, folder, state, policy)
    except PodiumError:
        return None  # still unknown: push.json says so, and the next push / status looks again


def _check_kernel_sources(session: kaggle_api.KaggleSession, folder: Path, meta: dict) -> None:
    """Refuse, before anything is sent, a kernel source that is missing or whose run has not completed:
    Kaggle would start this run anyway, without that input (or with an older version's output)."""
    metadata = folder / "kernel-metadata.json"
    for ref in meta.get("dataset_sources") or []:
        if not kaggle_api.dataset_exists(session, ref):
            ours = ref in _own_datasets(folder / "podium-kernel.json")
            fix = ("make kernel EXP=<config> KERNEL=<spec> uploads it again (its local upload record is checked "
                   "against Kaggle), then make push" if ours else
                   f"publish {ref} or remove it from dataset_sources in the kernel spec, then make kernel and push")
            raise PodiumError(f"Dataset source {ref} of this kernel does not exist on Kaggle (or is not visible to "
                              "you); nothing was pushed.", expected="every dataset in kernel-metadata.json on Kaggle",
                              received=f"Kaggle has no dataset {ref}", fix=fix)
    for ref in meta.get("kernel_sources") or []:
        if not kaggle_api.kernel_exists(session, ref):
            raise PodiumError("A kernel source of this kernel does not exist on Kaggle (or is not visible to you); "
                              "nothing was pushed.", expected="owner/slug of a kernel with a saved version",
                              received=ref, fix=f"push that kernel first, or fix kernel_sources in {metadata}")
        status, failure = kaggle_api.kernel_status(session, ref)
        if status != "COMPLETE":
            raise PodiumError(f"Kernel source {ref} has no completed run to read from; nothing was pushed.",
                              expected="its latest run COMPLETE", received=f"{status} {failure}".strip(),
                              fix="wait for it (make status with that kernel's config), then make push again")


def _own_datasets(rendered: Path) -> list[str]:
    """The refs of the datasets make kernel uploads for this kernel (weights, packaged run)."""
    if not rendered.is_file():
        return []
    made = json.loads(rendered.read_text(encoding="utf-8"))
    refs = []
    for key in ("weights_dataset", "run_dataset"):
        meta = Path(made.get(key) or "") / DATASET_METADATA
        if made.get(key) and meta.is_file():
            refs.append(str(json.loads(meta.read_text(encoding="utf-8")).get("id", "")))
    return refs


def _restore_push(folder: Path, previous: dict | None) -> None:
    path = folder / "push.json"
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        write_json(path, previous)


def _read_push_or_none(folder: Path) -> dict | None:
    path = folder / "push.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


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
    failed: bool = False  # finished in ERROR or CANCEL_ACKNOWLEDGED
    history: list[str] = field(default_factory=list)


def wait_for_kernel(session: kaggle_api.KaggleSession, folder: Path, policy: StatusPolicy | None = None,
                    on_progress: Callable[[KernelState, float], None] | None = None,
                    reconcile: ReconcilePolicy | None = None) -> KernelState:
    """Poll with backoff until this push's run finishes or policy.timeout passes (then finished=False).

    A push whose outcome is unknown is looked for first (adopted when found); when Kaggle does not show it,
    this raises instead of polling some other version's status. A run that ends ERROR / CANCEL_* comes
    back finished with `failed` set and Kaggle's failure message; push.json keeps both for `make output`.
    """
    policy = policy or StatusPolicy()
    pushed = read_push(folder)
    if pushed.get("status") == OUTCOME_UNKNOWN:
        adopted = reconcile_push(session, folder, pushed, reconcile or ReconcilePolicy(sleep=policy.sleep,
                                                                                        clock=policy.clock))
        if adopted is None:
            raise PodiumError(f"The last push of {pushed['ref']} never got an answer, and Kaggle shows no version "
                              f"carrying its token {pushed['token']}.", expected="a kernel version with that token",
                              received="none among the latest versions",
                              fix="make push EXP=... sends it (it looks for it once more first; nothing is running "
                                  "for it now)")
        pushed = adopted
    state = KernelState(pushed["ref"], pushed["version"], "PUSHED")
    polling = Polling(policy)
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
        elapsed = polling.elapsed()
        if on_progress:
            on_progress(state, elapsed)
        if state.finished:
            pushed["status"], pushed["failure"] = status, failure
            state.failed = status in FAILED
            write_json(folder / "push.json", pushed)
            return state
        if not polling.wait(elapsed):
            return state


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
    """The finished run's outputs into runs/<slug>-v<version>/, all checked; error pages rejected.

    A run that ended ERROR / CANCEL_ACKNOWLEDGED is fetched too (its kernel.log says why), into
    runs/<slug>-v<version>-failed/ so it is never taken for a trained run, and then this raises.
    """
    pushed = read_push(folder)
    if pushed.get("status") not in TERMINAL:
        raise PodiumError(f"Kernel {pushed['ref']} version {pushed['version']} has not finished (as far as podium "
                          "has seen).", expected="status COMPLETE", received=pushed.get("status", "unknown"),
                          fix="make status EXP=<config> first")
    failed = pushed["status"] in FAILED
    files, log = kaggle_api.kernel_output_files(session, pushed["ref"])
    run_dir = Path(runs_dir) / (kernel_run_id(pushed) + ("-failed" if failed else ""))
    staging = run_dir.with_name(f".{run_dir.name}.partial")
    remove_made(staging, "downloading kernel output", legacy=any_folder)
    mark_made(staging, "downloading kernel output")
    try:
        saved = _download_files(session, files, staging, get, pushed["ref"], run_dir)
        if log:
            write_text(staging / "kernel.log", session.creds.redact(log))
        record = _check_run_record(staging, pushed)
        remove_made(run_dir, "a kernel's output", legacy=lambda p: (p / "kernel.log").is_file())
        os.replace(staging, run_dir)
    finally:
        if is_made(staging):
            remove_made(staging, "downloading kernel output")
    if failed:
        where = f"read {run_dir / 'kernel.log'}" if log else f"Kaggle returned no log; see {pushed.get('url')}"
        raise PodiumError(f"Kernel {pushed['ref']} version {pushed['version']} ended {pushed['status']}; its "
                          f"{len(saved)} output file(s) and log are in {run_dir}, not a finished run.",
                          expected="status COMPLETE", received=pushed.get("failure") or "no message from Kaggle",
                          fix=f"{where}, fix the cause, then make push EXP=... (a new run)")
    return OutputSummary(run_dir, saved, record)


def _download_files(session: kaggle_api.KaggleSession, files: list[tuple[str, str]], staging: Path,
                    get: Callable | None, ref: str, run_dir: Path) -> list[str]:
    """Every listed output into `staging`; raises, naming them, when any came back as an error page."""
    import requests

    get = get or (lambda url: requests.get(url, timeout=300))
    rejected, saved = [], []
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
    if rejected:
        raise PodiumError(f"{len(rejected)} output file(s) of {ref} came back as error pages.",
                          expected="the files the kernel wrote", received="; ".join(rejected[:5]),
                          fix="run make output again later; nothing was written to " + str(run_dir))
    return saved


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
