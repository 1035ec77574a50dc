"""What podium asks Kaggle for, each call through one KaggleSession (podium.kaggle.session: the only retry
loop) with its failures in words (podium.kaggle.faults): the competition's files, submissions (every page),
datasets and kernels.

The session, its retry policy and the error kinds are importable from here too, as the callers always
imported them (`from podium.kaggle.client import KaggleSession, OutcomeUnknown`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.io import check_free_space  # one wording and unit choice for every free-space refusal
from podium.io import write_json
from podium.kaggle.faults import TRANSIENT_STATUS, OutcomeUnknown, TransientError
from podium.kaggle.session import KaggleSession, RetryPolicy
from podium.paths import any_folder, mark_made, remove_made

__all__ = ["TRANSIENT_STATUS", "KaggleSession", "OutcomeUnknown", "RetryPolicy", "TransientError",
           "create_or_version_dataset", "dataset_exists", "download_competition", "find_submission",
           "kernel_exists", "kernel_output_files", "kernel_status", "kernel_version", "list_competition_files",
           "list_submissions", "push_kernel", "send_code_submission", "send_submission", "submission_pages"]


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
