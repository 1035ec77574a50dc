"""A local stand-in for the Kaggle API, so the pinned `kaggle` client runs end to end in tests.

It speaks what kaggle==2.2.4 / kagglesdk==0.1.37 really send (read from their source):
  * POST /api/v1/<package>.<Service>/<Method> with a JSON body (camelCase fields), Basic or Bearer auth;
    errors as JSON {"code": <status>, "message": ...} with the same HTTP status;
  * competition files: DownloadDataFile answers 302 to GET /files/<comp>/<name> (Range supported);
  * uploads: StartSubmissionUpload / StartBlobUpload return {token, createUrl}; the body is PUT there;
  * kernel outputs: ListKernelSessionOutput lists {fileName, url}; the url is fetched with a plain GET;
  * kernels: SaveKernel creates a version (also when the connection is then reset) and keeps its request
    body (text, sessionTimeoutSeconds, sources); kernelDataSources that are not a kernel with a version are
    dropped and returned in invalidKernelSources, the version is still created (as Kaggle does);
    GetKernel returns the latest version's number and source, or version N's for kernelSlug "<slug>/<N>";
  * datasets: every version keeps its files by name; an uploaded <dir>.zip (the client's dir_mode="zip")
    is unpacked into <dir>/<member>, as Kaggle shows it.

Every request is logged as "METHOD /path -> status" (`server.log`). Faults are scripted per request name
with `server.fail(...)`: an HTTP status (with Retry-After, in seconds or as an HTTP date), a connection
reset before the request is handled, after it was handled (the client never hears the answer), in the
middle of an upload body, or an answer cut off (`reset="cut-body"`: Content-Length announced, half the
body sent, connection closed), or handled and then answered with a body the client cannot read
(`garble=True`: cut JSON, an HTML page with status 200). ListSubmissions pages (`submissions_page` rows at
most, an opaque nextPageToken). `server.late_list = N` hides each new submission from the next N
ListSubmissions calls, as Kaggle lists a new submission only some seconds after creating it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import socket
import struct
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RULES_MESSAGE = "You must accept this competition's rules before you'll be able to download files."


@dataclass
class Fault:
    """One scripted failure for requests whose name contains `match` (e.g. "CreateSubmission", "PUT /upload")."""

    match: str
    status: int | None = None
    retry_after: str | None = None
    reset: str | None = None  # "before" | "after" | "mid-body" (request) | "cut-body" (half the answer)
    body: str | None = None
    content_type: str = "application/json"
    times: int = 1
    after: int = 0  # let this many matching requests through first
    garble: bool = False  # handle the request (Kaggle acts), then answer `status` (200) with `body` raw
    hold: tuple | None = None  # (reached, release) threading.Events: say the request arrived, wait to go on


@dataclass
class Submission:
    ref: int
    description: str
    file_name: str
    content: bytes
    date: str
    polls_until_scored: int
    public_score: str
    status: str = "PENDING"
    hidden_lists: int = 0  # ListSubmissions calls that do not show it yet (Kaggle lists late)
    kernel: str = ""  # a code submission: owner/slug and version of the kernel Kaggle re-runs
    kernel_version: int = 0


@dataclass
class Kernel:
    ref: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # statuses the latest version reports, one per poll
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str = ""


class KaggleStandIn:
    """Threaded HTTP server on 127.0.0.1 and a free port; `with KaggleStandIn() as server:`."""

    def __init__(self, username: str = "podium-tester", key: str = "k3y-0123456789abcdef-SECRET",
                 token: str | None = None):
        self.username, self.key, self.token = username, key, token
        self.log: list[str] = []
        self.bodies: list[tuple[str, bytes]] = []  # every request body received, for secret scans
        self.faults: list[Fault] = []
        self.competitions: dict[str, dict[str, Any]] = {}
        self.submissions: dict[str, list[Submission]] = {}
        self.uploads: dict[str, bytes | None] = {}
        self.upload_names: dict[str, str] = {}  # blob token -> the file name given to StartBlobUpload
        self.datasets: dict[str, list[dict[str, Any]]] = {}
        self.kernels: dict[str, Kernel] = {}
        self.score_after_polls = 1
        self.code_score_after_polls = 3  # a code submission is scored after a re-run: more polls
        self.late_list = 0  # each new submission is hidden from this many ListSubmissions calls
        self.ranges: list[str] = []  # Range headers of file GETs (a resumed download asks for the rest)
        self.public_score = "0.91250"
        self.default_kernel_plan = ["QUEUED", "RUNNING", "COMPLETE"]
        self.submissions_page = 20  # the most rows one ListSubmissions page holds, whatever pageSize asks
        self.pages_served: list[tuple[int, int]] = []  # (first row, rows) of each ListSubmissions page
        self._page_tokens: dict[str, int] = {}
        self._listing: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._next = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "KaggleStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -------------------------------------------------------------------------------------- scripting
    def add_competition(self, slug: str, files: dict[str, bytes], rules_accepted: bool = True) -> None:
        self.competitions[slug] = {"files": dict(files), "rules_accepted": rules_accepted,
                                   "modified": time.time() - 3600}

    def fail(self, match: str, **kwargs) -> Fault:
        fault = Fault(match, **kwargs)
        self.faults.append(fault)
        return fault

    def requests_named(self, fragment: str) -> list[str]:
        return [line for line in self.log if fragment in line]

    def clear_log(self) -> None:
        self.log.clear()

    def new_id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _take_fault(self, name: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.match in name and fault.times > 0:
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    return fault
        return None

    # ---------------------------------------------------------------------------------- API handlers
    def call(self, method: str, body: dict[str, Any], base: str) -> tuple[int, Any, dict[str, str]]:
        """Dispatch one POST /api/v1/<service>/<method>; returns (status, json-or-None, extra headers)."""
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, f"stand-in has no method {method}")
        return handler(body, base)

    def _competition(self, body: dict[str, Any]) -> dict[str, Any] | tuple:
        slug = body.get("competitionName", "")
        comp = self.competitions.get(slug)
        if comp is None:
            return _error(404, "Competition not found")
        if not comp["rules_accepted"]:
            return _error(403, RULES_MESSAGE)
        return comp

    def _api_ListDataFiles(self, body, base):
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        names = sorted(comp["files"])
        size = int(body.get("pageSize") or 20)
        start = int(body.get("pageToken") or 0)
        page = names[start:start + size]
        files = [{"ref": name, "name": name, "totalBytes": len(comp["files"][name]),
                  "creationDate": "2024-01-01T00:00:00.000Z"} for name in page]
        token = str(start + size) if start + size < len(names) else ""
        return 200, {"files": files, "nextPageToken": token}, {}

    def _api_DownloadDataFile(self, body, base):
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        name = body.get("fileName", "")
        if name not in comp["files"]:
            return _error(404, f"File {name} not found")
        return 302, None, {"Location": f"{base}/files/{body['competitionName']}/{name}"}

    def _api_StartSubmissionUpload(self, body, base):
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        return self._start_upload(base)

    def _api_StartBlobUpload(self, body, base):
        return self._start_upload(base, body.get("name", ""))

    def _start_upload(self, base, name: str = ""):
        token = f"blob-{self.new_id()}"
        self.uploads[token] = None
        self.upload_names[token] = name
        return 200, {"token": token, "createUrl": f"{base}/upload/{token}"}, {}

    def _api_CreateSubmission(self, body, base):
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        token = body.get("blobFileTokens", "")
        if self.uploads.get(token) is None:
            return _error(400, "The submission file was not uploaded")
        slug = body["competitionName"]
        sub = Submission(ref=self.new_id(), description=body.get("submissionDescription", ""),
                         file_name=f"{token}.csv", content=self.uploads[token],
                         date=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         polls_until_scored=self.score_after_polls, public_score=self.public_score,
                         hidden_lists=self.late_list)
        self.submissions.setdefault(slug, []).append(sub)
        return 200, {"message": "Successfully submitted to the competition", "ref": sub.ref}, {}

    def _api_CreateCodeSubmission(self, body, base):
        """What competition_submit_code sends (ApiCreateCodeSubmissionRequest): competitionName, kernelOwner,
        kernelSlug, kernelVersion (optional: the latest), fileName (the output scored), submissionDescription.
        The version must exist; the submission is scored after code_score_after_polls list calls."""
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        ref = f"{body.get('kernelOwner', '')}/{body.get('kernelSlug', '')}"
        kernel = self.kernels.get(ref)
        versions = len(getattr(kernel, "versions", []) or []) if kernel is not None else 0
        if not versions:
            return _error(404, f"Notebook {ref} not found")
        version = int(body.get("kernelVersion") or versions)
        if not 1 <= version <= versions:
            return _error(400, f"Notebook {ref} has no version {version}")
        sub = Submission(ref=self.new_id(), description=body.get("submissionDescription", ""),
                         file_name=body.get("fileName") or "submission.csv", content=b"",
                         date=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         polls_until_scored=self.code_score_after_polls, public_score=self.public_score,
                         hidden_lists=self.late_list, kernel=ref, kernel_version=version)
        self.submissions.setdefault(body["competitionName"], []).append(sub)
        return 200, {"message": "Your submission was successfully saved", "ref": sub.ref}, {}

    def _api_ListSubmissions(self, body, base):
        """Newest first, paged as Kaggle pages it: at most min(pageSize, submissions_page) rows, and an opaque
        nextPageToken while more remain. A listing (first page) is what advances hidden / pending rows."""
        comp = self._competition(body)
        if isinstance(comp, tuple):
            return comp
        token = str(body.get("pageToken") or "")
        if token:
            start = self._page_tokens.get(token)
            if start is None:
                return _error(400, f"Invalid page token {token}")
            rows = self._listing.get(body["competitionName"], [])
        else:
            start, rows = 0, self._list_rows(body["competitionName"])
            self._listing[body["competitionName"]] = rows
        size = min(int(body.get("pageSize") or 20), self.submissions_page)
        page = rows[start:start + size]
        next_token = ""
        if start + size < len(rows):
            next_token = f"CgQ{self.new_id()}x"  # opaque, as Kaggle's are
            self._page_tokens[next_token] = start + size
        self.pages_served.append((start, len(page)))
        return 200, {"submissions": page, "nextPageToken": next_token}, {}

    def _list_rows(self, slug: str) -> list[dict[str, Any]]:
        rows = []
        for sub in reversed(self.submissions.get(slug, [])):
            if sub.hidden_lists > 0:  # created, but not listed yet
                sub.hidden_lists -= 1
                continue
            if sub.status == "PENDING":
                if sub.polls_until_scored <= 0:
                    sub.status = "COMPLETE"
                sub.polls_until_scored -= 1
            row = {"ref": sub.ref, "description": sub.description, "fileName": sub.file_name,
                   "date": sub.date, "status": sub.status, "totalBytes": len(sub.content)}
            if sub.status == "COMPLETE":
                row["publicScore"] = sub.public_score
            rows.append(row)
        return rows

    def _api_GetSubmissionLimits(self, body, base):
        return 200, {"numAllowedNow": 5}, {}

    def _api_GetDatasetStatus(self, body, base):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return _error(404, "Dataset not found")
        return 200, {"status": "READY"}, {}

    def _api_CreateDataset(self, body, base):
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        if body.get("ownerSlug") != self.username:
            return _error(403, "You cannot create datasets for another user")
        if ref in self.datasets:
            return 200, {"status": "error", "error": "The dataset already exists"}, {}
        files = self._files_from_tokens(body.get("files", []))
        if files is None:
            return _error(400, "A file token was not uploaded")
        self.datasets[ref] = [{"files": files, "notes": "", "title": body.get("title")}]
        return 200, {"ref": ref, "url": f"{base}/{ref}", "status": "ok"}, {}

    def _api_CreateDatasetVersion(self, body, base):
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        if ref not in self.datasets:
            return _error(404, "Dataset not found")
        payload = body.get("body", {})
        files = self._files_from_tokens(payload.get("files", []))
        if files is None:
            return _error(400, "A file token was not uploaded")
        self.datasets[ref].append({"files": files, "notes": payload.get("versionNotes", "")})
        return 200, {"ref": ref, "url": f"{base}/{ref}", "status": "ok"}, {}

    def _files_from_tokens(self, files: list[dict[str, Any]]) -> dict[str, bytes] | None:
        """{path: bytes} of one dataset version, as Kaggle shows it: an uploaded <dir>.zip is unpacked into
        <dir>/<member> (the client's dir_mode="zip" uploads each subfolder that way)."""
        out = {}
        for item in files:
            token = item.get("token", "")
            content = self.uploads.get(token)
            if content is None:
                return None
            name = self.upload_names.get(token) or token
            if name.endswith(".zip") and zipfile.is_zipfile(io.BytesIO(content)):
                with zipfile.ZipFile(io.BytesIO(content)) as archive:
                    for member in archive.infolist():
                        if not member.is_dir():
                            out[f"{name[:-4]}/{member.filename}"] = archive.read(member)
            else:
                out[name] = content
        return out

    def _api_SaveKernel(self, body, base):
        """A new version that starts running at once. As on Kaggle, invalid kernel sources (not an existing
        kernel with a version) are dropped and named in invalidKernelSources, yet the version is created;
        the version keeps the request body (text, sessionTimeoutSeconds, sources...)."""
        ref = body.get("slug") or ""
        owner = ref.split("/")[0]
        if owner != self.username:
            return _error(403, "You cannot push kernels for another user")
        requested = list(body.get("kernelDataSources") or [])
        invalid = [source for source in requested if not (source in self.kernels and self.kernels[source].versions)]
        kernel = self.kernels.setdefault(ref, Kernel(ref=ref))
        previous_done = bool(kernel.versions)
        kernel.versions.append({**body, "kernelDataSources": [s for s in requested if s not in invalid]})
        plan = list(self.default_kernel_plan)
        if previous_done:
            plan = ["COMPLETE"] + plan  # Kaggle keeps reporting the last finished version for a moment
        kernel.plan = plan
        return 200, {"ref": ref, "url": f"{base}/code/{ref}", "versionNumber": len(kernel.versions),
                     "kernelId": 77, "invalidKernelSources": invalid}, {}

    def _api_GetKernel(self, body, base):
        """What `kaggle kernels pull` reads: metadata (currentVersionNumber) and the source of the latest
        version, or of version N when kernelSlug is "<slug>/<N>"."""
        slug, _, label = str(body.get("kernelSlug", "")).partition("/")
        kernel = self.kernels.get(f"{body.get('userName')}/{slug}")
        if kernel is None or not kernel.versions:
            return _error(404, "Notebook not found")
        number = int(label) if label.isdigit() else len(kernel.versions)
        if not 1 <= number <= len(kernel.versions):
            return _error(404, "Notebook version not found")
        version = kernel.versions[number - 1]
        metadata = {"ref": kernel.ref, "slug": slug, "title": version.get("newTitle") or slug,
                    "author": kernel.ref.split("/")[0], "language": version.get("language", "python"),
                    "kernelType": version.get("kernelType", "script"),
                    "currentVersionNumber": len(kernel.versions),
                    "kernelDataSources": version.get("kernelDataSources", [])}
        blob = {"source": version.get("text", ""), "language": version.get("language", "python"),
                "kernelType": version.get("kernelType", "script"), "slug": slug}
        return 200, {"metadata": metadata, "blob": blob}, {}

    def _kernel(self, body):
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        kernel = self.kernels.get(ref)
        if kernel is None:
            return _error(404, "Kernel not found")
        return kernel

    def _api_GetKernelSessionStatus(self, body, base):
        kernel = self._kernel(body)
        if isinstance(kernel, tuple):
            return kernel
        status = kernel.plan.pop(0) if len(kernel.plan) > 1 else kernel.plan[0]
        payload = {"status": status}
        if status == "ERROR":
            payload["failureMessage"] = "Your notebook hit an error"
        return 200, payload, {}

    def _api_ListKernelSessionOutput(self, body, base):
        kernel = self._kernel(body)
        if isinstance(kernel, tuple):
            return kernel
        files = [{"fileName": name, "url": f"{base}/kernel-output/{kernel.ref}/{name}"}
                 for name in sorted(kernel.outputs)]
        return 200, {"files": files, "log": kernel.log}, {}

    def _api_IntrospectToken(self, body, base):
        active = self.token is not None and body.get("token") == self.token
        return 200, {"active": active, "username": self.username if active else ""}, {}


def _error(status: int, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"code": status, "message": message}, {}


def _handler_for(server: KaggleStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # the stand-in keeps its own log
            pass

        # ------------------------------------------------------------------------------ plumbing
        def _name(self) -> str:
            return f"{self.command} {self.path.split('?')[0]}"

        def _record(self, status: Any) -> None:
            server.log.append(f"{self._name()} -> {status}")

        def _reset(self) -> None:
            """Close with RST: the client sees 'Connection reset by peer', never an answer."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None,
                  raw: bytes | None = None, content_type: str = "application/json", record: bool = True) -> None:
            data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
            cut = getattr(self, "cut_body", False) and len(data) > 1
            # before answering: a client that has its answer must find it logged
            if record:
                self._record(f"{status} CUT after {len(data) // 2} of {len(data)} bytes" if cut else status)
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))  # announced in full ...
            self.end_headers()
            if cut:  # ... half sent, then the connection closes: the client reads an incomplete body
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(data)

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
                return user == server.username and key == server.key
            if auth.startswith("Bearer "):
                return server.token is not None and auth[7:] == server.token
            return False

        def _apply_fault_before(self, fault: Fault | None) -> bool:
            """True when the fault answered (or dropped) the request."""
            if fault is None:
                return False
            if fault.reset == "before":
                self._record("RESET")
                self._reset()
                return True
            if fault.reset == "mid-body":
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(max(1, length // 2))
                self._record("RESET mid-body")
                self._reset()
                return True
            if fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                if fault.body is not None:
                    self._send(fault.status, headers=headers, raw=fault.body.encode(),
                               content_type=fault.content_type)
                else:
                    self._send(fault.status, {"code": fault.status, "message": f"stand-in fault {fault.status}"},
                               headers)
                return True
            return False

        # -------------------------------------------------------------------------------- verbs
        def do_POST(self) -> None:
            fault = server._take_fault(self._name())
            if fault is not None and fault.reset == "before":
                self._apply_fault_before(fault)
                return
            body = self._body()
            server.bodies.append((self._name(), body))
            if fault is not None and fault.hold is not None:
                reached, release = fault.hold
                reached.set()
                release.wait(30)
                fault = None
            if fault is not None and fault.reset != "after" and not fault.garble and self._apply_fault_before(fault):
                return
            if not self._authorised():
                self._send(401, {"code": 401, "message": "Unauthenticated"})
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["api", "v1"]:
                self._send(404, {"code": 404, "message": "no such route"})
                return
            request = json.loads(body or b"{}")
            status, payload, headers = server.call(parts[3], request, server.url)
            if fault is not None and fault.reset == "after":
                self._record(f"{status} handled, then RESET")
                self._reset()
                return
            if fault is not None and fault.garble:  # acted; the answer cannot be read
                server.log.append(f"{self._name()} -> {status} handled, then a garbled answer")
                self._send(fault.status or 200, raw=(fault.body or "").encode(), content_type=fault.content_type,
                           record=False)
                return
            self._send(status, payload, headers)

        def do_PUT(self) -> None:
            fault = server._take_fault(self._name())
            if self._apply_fault_before(fault):
                return
            body = self._body()
            server.bodies.append((self._name(), body))
            token = self.path.split("?")[0].rsplit("/", 1)[-1]
            if token not in server.uploads:
                self._send(404, {"code": 404, "message": "unknown upload"})
                return
            server.uploads[token] = body
            self._send(200, {})

        def do_GET(self) -> None:
            fault = server._take_fault(self._name())
            self.cut_body = fault is not None and fault.reset == "cut-body"
            if not self.cut_body and self._apply_fault_before(fault):
                return
            path = self.path.split("?")[0].strip("/").split("/")
            if path[0] == "files" and len(path) == 3:
                comp = server.competitions.get(path[1], {})
                data = comp.get("files", {}).get(path[2])
                if data is None:
                    self._send(404, {"code": 404, "message": "no such file"})
                    return
                self._send_file(data, comp["modified"])
            elif path[0] == "kernel-output" and len(path) >= 4:
                kernel = server.kernels.get(f"{path[1]}/{path[2]}")
                data = kernel.outputs.get("/".join(path[3:])) if kernel else None
                if data is None:
                    self._send(404, raw=b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
                               content_type="text/html")
                    return
                self._send(200, raw=data, content_type="application/octet-stream")
            else:
                self._send(404, {"code": 404, "message": "no such route"})

        def _send_file(self, data: bytes, modified: float) -> None:
            headers = {"Accept-Ranges": "bytes", "Last-Modified": email.utils.formatdate(modified, usegmt=True),
                       "ETag": '"' + hashlib.sha1(data).hexdigest() + '"'}
            wanted = self.headers.get("Range", "")
            if wanted:
                server.ranges.append(wanted)
            if wanted.startswith("bytes=") and wanted[6:].endswith("-"):
                start = int(wanted[6:-1])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self._send(206, headers=headers, raw=data[start:], content_type="application/zip")
                return
            self._send(200, headers=headers, raw=data, content_type="application/zip")

    return Handler


# ------------------------------------------------------------------------------------ pytest fixtures
import pytest  # noqa: E402  (fixtures live beside the server so every test_kaggle_* file shares them)


@pytest.fixture
def standin():
    with KaggleStandIn() as server:
        yield server


@pytest.fixture
def kaggle_home(tmp_path, monkeypatch, standin):
    """HOME, KAGGLE_CONFIG_DIR and the endpoint all point at tmp / the stand-in: ~/.kaggle is never read."""
    home = tmp_path / "home"
    config = home / ".kaggle"
    config.mkdir(parents=True)
    kaggle_json = config / "kaggle.json"
    kaggle_json.write_text(json.dumps({"username": standin.username, "key": standin.key}))
    kaggle_json.chmod(0o600)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "XDG_CONFIG_HOME", "VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("PODIUM_KAGGLE_ENDPOINT", standin.url)
    monkeypatch.chdir(tmp_path)
    return home


class Sleeps(list):
    """An injectable sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def poll():
    """Waiting for a score without waiting: a fixed clock and recorded sleeps."""
    from podium.kaggle.submit import PollPolicy

    return PollPolicy(timeout=100, interval=5, sleep=Sleeps(), clock=lambda: 0.0)


@pytest.fixture
def session(kaggle_home):
    from podium.kaggle.client import KaggleSession, RetryPolicy

    return KaggleSession(retry=RetryPolicy(sleep=Sleeps()))
