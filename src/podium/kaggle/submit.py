"""`make submit`: validate locally, send exactly once, log it, wait for the public score.

Two kinds of competition (the spec's `submission_kind`): a CSV competition takes the run's CSV
(StartSubmissionUpload, PUT, CreateSubmission); a code competition takes a kernel version that Kaggle
re-runs on the hidden test set (CreateCodeSubmission naming the version `make push` recorded in
kernels/<slug>/push.json, which must have run to COMPLETE).

Exactly once: each attempt carries a token in its message, and the log row (status "sending") is written
before anything is sent. Before every send the submissions list is searched for that token: if Kaggle
already has it (a crash, a re-run) it is adopted, never sent again. When a create lost its answer
(OutcomeUnknown) the list is searched with growing waits for up to `RetryPolicy.reconcile_window` seconds
before anything is re-sent, because Kaggle lists a new submission only some seconds later. A submission
already logged is not re-sent unless asked (`again`), so re-running the command only resumes the wait for
the score (which for a code competition can take hours). A failure that certainly sent nothing (401, 403,
a refused 429, a list that shows no such token) turns the row `failed`, with the reason in `note`.

Every look reads the submissions list on every page until the token is found (Kaggle pages the list).
An answer that cannot be read (cut JSON, an HTML 200) is an unknown outcome like a lost one. One writer per
submission: the send phase (read the log, send, record) holds an exclusive lock on
submissions/.locks/<competition>-<label hash>.lock, so a second `make submit` of the same file or kernel
version at once is refused, naming the holder, and sends nothing; the wait for the score holds no lock.
A code competition's push.json must name the run now asked for (run id, config hash, and the digest of its
checkpoints when the kernel carries a packaged run): a run changed since the push is refused, not submitted
under the new run's name.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from podium.backoff import PollSchedule, Polling
from podium.data.competitions import CompetitionSpec, load_competition
from podium.data.dataset import require_spec_task
from podium.config import ExperimentConfig, load_config
from podium.errors import PodiumError
from podium.paths import check_name
from podium.io import atomic_path, file_sha256
from podium.submission.record import submission_path
from podium.data.index import load_index
from podium.kaggle import client as kaggle_api
from podium.kaggle.kernels import pushed_run_changes
from podium.kaggle.client import OutcomeUnknown, TransientError, find_submission, send_code_submission, send_submission
from podium.submission.validate import read_competition_sample
from podium.tasks.base import Task
from podium.training.run_lock import exclusive_lock

LOG_COLUMNS = ["time", "competition", "file", "message", "cv", "status", "public_score", "ref", "run_id",
               "token", "sha256", "note"]  # `note` came later: older logs without it read as ""
SETTLED = {"submitted", "scored", "pending", "error"}  # a row in one of these states was received by Kaggle
# "sending": logged, maybe sent (the next run looks for its token first); "failed": nothing was sent
CODE_OUTPUT = "submission.csv"  # the file a code competition's kernel writes, and Kaggle scores


@dataclass
class PollPolicy(PollSchedule):
    """How long to wait for a score: up to 30 min, checks 10 s apart growing to 2 min."""


@dataclass(frozen=True)
class KernelVersion:
    """The pushed kernel version a code competition gets, as `make push` / `make status` recorded it."""

    ref: str  # owner/slug
    version: int
    status: str  # push.json's last seen state; only COMPLETE may be submitted


@dataclass
class SubmitTarget:
    run_id: str
    competition: CompetitionSpec
    file: Path  # the CSV; for a code competition, the kernel's push.json
    cv: float | None
    config_hash: str
    data_root: Path
    submissions_dir: Path
    kernel: KernelVersion | None = None  # set for a code competition

    @property
    def label(self) -> str:
        """What log.csv's `file` column says: the CSV's path, or kernel:<owner>/<slug>@v<version>."""
        return f"kernel:{self.kernel.ref}@v{self.kernel.version}" if self.kernel else str(self.file)


@dataclass
class SubmitResult:
    target: SubmitTarget
    message: str
    ref: int | None
    status: str
    public_score: str = ""
    adopted: bool = False  # found already on Kaggle (sent by an earlier attempt), not sent again
    events: list[str] = field(default_factory=list)
    error: str = ""  # Kaggle's scoring error, when status is "error"


# ------------------------------------------------------------------------------------ what to submit
def run_config(run_id: str | None, runs_dir: str = "runs") -> ExperimentConfig:
    """The resolved config a run saved (runs/<run-id>/config.yaml)."""
    if not run_id:
        raise PodiumError("Nothing to submit was named.", expected="RUN=<run-id> or EXP=<config>",
                          received="neither", fix="make submit RUN=<run-id> (see runs/)")
    saved = Path(runs_dir) / check_name(run_id, "RUN", "<run-id from runs/>") / "config.yaml"
    if not saved.is_file():
        raise PodiumError(f"Run '{run_id}' has no saved config.", expected=str(saved),
                          received="no such file", fix="check the run id against the folders in runs/")
    return load_config(saved)


def choose_target(cfg: ExperimentConfig, kernel_folder: Path, kernel_named: bool = False) -> SubmitTarget:
    """The CSV or the pushed kernel version, as the competition's `submission_kind` says; a kernel named for
    a CSV competition is refused (and a code competition without a pushed kernel, by resolve_code_target)."""
    spec = load_competition(cfg.competition)
    if spec.submission_kind == "code":
        return resolve_code_target(cfg, kernel_folder, spec)
    if spec.submission_kind != "csv":
        raise PodiumError(f"Competition '{spec.slug}' has an unknown submission_kind.", expected="csv or code",
                          received=repr(spec.submission_kind), fix="fix submission_kind in its spec YAML")
    if kernel_named:
        raise PodiumError(f"Competition '{spec.slug}' takes a CSV, not a kernel.",
                          expected="make submit EXP=<config> (or RUN=<run-id>) without KERNEL=",
                          received=f"KERNEL= naming {kernel_folder}",
                          fix="drop KERNEL=: make predict writes the CSV that make submit sends (or set "
                              "submission_kind: code in the competition's spec if it is a code competition)")
    return resolve_target(cfg=cfg)


def resolve_target(run_id: str | None = None, cfg: ExperimentConfig | None = None,
                   runs_dir: str = "runs") -> SubmitTarget:
    """The run's submission file, competition and CV score, from the run id or the config."""
    given = cfg is not None  # a config with prediction-time overrides names its own variant of the file
    if cfg is None:
        cfg = run_config(run_id, runs_dir)
    spec = load_competition(cfg.competition)
    run_id = cfg.run_id
    path = submission_path(cfg) if given else Path(cfg.submissions_dir) / spec.slug / f"{run_id}.csv"
    if not path.is_file():
        raise PodiumError(f"Run '{run_id}' has no submission file.", expected=str(path), received="no such file",
                          fix="make predict EXP=<its config> first")
    return SubmitTarget(run_id=run_id, competition=spec, file=path, cv=_cv(cfg), config_hash=cfg.config_hash(),
                        data_root=Path(cfg.data_dir) / spec.slug, submissions_dir=Path(cfg.submissions_dir))


def resolve_code_target(cfg: ExperimentConfig, kernel_folder: Path,
                        spec: CompetitionSpec | None = None) -> SubmitTarget:
    """The kernel version `make push` recorded in <kernel_folder>/push.json (keys read: ref, version, status)."""
    spec = spec or load_competition(cfg.competition)
    pushed_path = Path(kernel_folder) / "push.json"
    if not pushed_path.is_file():
        raise PodiumError(f"Competition '{spec.slug}' is a code competition: Kaggle scores a kernel version, "
                          f"not a CSV, and no kernel has been pushed from {kernel_folder}.",
                          expected=f"{pushed_path} (written by make push)", received="no pushed kernel",
                          fix="make kernel EXP=<config> KERNEL=<spec>, then make push and make status with the "
                              "same EXP/KERNEL, then make submit again with them")
    try:
        pushed = json.loads(pushed_path.read_text(encoding="utf-8"))
        ref, status = str(pushed["ref"]), str(pushed.get("status") or "unknown")
        version = int(pushed["version"]) if pushed.get("version") is not None or status == "COMPLETE" else 0
    except (ValueError, KeyError, TypeError) as exc:
        raise PodiumError(f"{pushed_path} does not name a kernel version.",
                          expected='{"ref": "<owner>/<slug>", "version": <n>, ...}', received=f"{exc!r}"[:200],
                          fix="make push again") from exc
    target = SubmitTarget(run_id=cfg.run_id, competition=spec, file=pushed_path, cv=_cv(cfg),
                          config_hash=cfg.config_hash(), data_root=Path(cfg.data_dir) / spec.slug,
                          submissions_dir=Path(cfg.submissions_dir), kernel=KernelVersion(ref, version, status))
    check_kernel(target)  # a push whose outcome is unknown has no version yet: `make status` finds it
    changes = pushed_run_changes(pushed, cfg)
    if changes:
        raise PodiumError(f"The kernel version pushed from {kernel_folder} does not run run {cfg.run_id} as it "
                          "is now, so it is not submitted under that run's name.",
                          expected=f"push.json naming run {cfg.run_id} (config {cfg.config_hash()}), as pushed",
                          received="; ".join(changes),
                          fix="make kernel EXP=<config> KERNEL=<spec>, make push, make status, then make submit "
                              "again (or submit the run that was pushed: RUN=<its run id>)")
    if ref.count("/") != 1 or version < 1:
        raise PodiumError(f"{pushed_path} does not name a kernel version.", expected="ref <owner>/<slug>, version >= 1",
                          received=f"ref {ref!r}, version {version}", fix="make push again")
    return target


def check_kernel(target: SubmitTarget) -> None:
    """Only a version seen to run to COMPLETE is submitted: Kaggle re-runs exactly that version's code."""
    kernel = target.kernel
    if kernel is not None and kernel.status != "COMPLETE":
        version = f"version {kernel.version}" if kernel.version else "(version not known yet)"
        raise PodiumError(f"Kernel {kernel.ref} {version} has not been seen to finish successfully, "
                          "so it is not submitted.", expected="status COMPLETE in " + str(target.file),
                          received=f"status {kernel.status}",
                          fix="make status EXP=<config> KERNEL=<spec> (wait for COMPLETE; after ERROR fix the "
                              "kernel, make push again), then make submit again")


def _cv(cfg: ExperimentConfig) -> float | None:
    metrics = Path(cfg.runs_dir) / cfg.run_id / "metrics.json"
    return json.loads(metrics.read_text(encoding="utf-8")).get("cv_mean") if metrics.is_file() else None


def validate_file(target: SubmitTarget, task: Task) -> None:
    """The same validator `make predict` ran, for the competition's task, against its sample: no network.
    `task`: the competition's task object, resolved by the entry point (make submit)."""
    spec = target.competition
    require_spec_task(spec, task.name, "the task given is", "pass the task the competition spec names (its task: key)")
    index_path = target.data_root / "index.parquet"
    if not index_path.is_file():
        raise PodiumError("The competition's data is not prepared, so the submission cannot be checked.",
                          expected=str(index_path), received="no index", fix=f"make data COMP={spec.slug}")
    sample = read_competition_sample(target.data_root / spec.sample_submission, spec)
    frame = pd.read_csv(target.file, dtype=str, keep_default_na=False)
    task.validate_submission(frame, sample, spec, load_index(index_path))


def submission_message(target: SubmitTarget, token: str) -> str:
    cv = f"{target.cv:.4f}" if target.cv is not None else "n/a"
    kernel = f" kernel {target.kernel.ref}@v{target.kernel.version}" if target.kernel else ""
    return f"{target.run_id} cfg {target.config_hash}{kernel} cv {cv} [podium {token}]"


# ------------------------------------------------------------------------------------------- the log
class SubmissionLog:
    """submissions/log.csv: one row per submission; rewritten atomically under a lock, rows never dropped.

    Older logs (fewer columns) read with "" for the new ones; columns this version does not know are kept."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> tuple[list[dict[str, str]], list[str]]:
        if not self.path.is_file():
            return [], list(LOG_COLUMNS)
        fix = (f"repair {self.path} by hand (one row per submission, the header's cells on every line) or move it "
               "aside: podium rewrites this log and never drops a row it cannot read")
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
                header = list(reader.fieldnames or [])
        except UnicodeDecodeError as err:
            raise PodiumError(f"The submissions log {self.path} is not UTF-8 text.", expected="the CSV podium writes",
                              received=f"byte {err.start}: {err.reason}", fix=fix) from None
        except csv.Error as err:
            raise PodiumError(f"The submissions log {self.path} is not a readable CSV.", expected="the CSV podium "
                              "writes", received=str(err), fix=fix) from None
        if rows and not {"file", "status"} <= set(header):
            raise PodiumError(f"The submissions log {self.path} has another header.",
                              expected=f"columns {', '.join(LOG_COLUMNS)}", received=f"columns {', '.join(header)}",
                              fix=fix)
        for line, row in enumerate(rows, start=2):
            if None in row or None in row.values():
                cells = len(header) + len(row.get(None) or []) if None in row else \
                    sum(v is not None for k, v in row.items() if k is not None)
                raise PodiumError(f"Row {line} of the submissions log {self.path} has {cells} cells.",
                                  expected=f"{len(header)} cells, as the header", received=f"{cells} cells",
                                  fix=fix)
        extra = [c for c in header if c not in LOG_COLUMNS]
        columns = LOG_COLUMNS + extra
        return [{k: (row.get(k) or "") for k in columns} for row in rows], columns

    def rows(self) -> list[dict[str, str]]:
        return self._read()[0]

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows, columns = self._read()
            yield rows
            with atomic_path(self.path) as tmp:
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
                    writer.writeheader()
                    writer.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        with self._locked() as rows:
            rows.append({k: _text(row.get(k)) for k in LOG_COLUMNS})

    def update(self, token: str, **values: Any) -> None:
        with self._locked() as rows:
            for row in rows:
                if row["token"] == token:
                    row.update({k: _text(v) for k, v in values.items()})

    def latest_for(self, run_id: str, sha256: str) -> dict[str, str] | None:
        matches = [r for r in self.rows() if r["run_id"] == run_id and r["sha256"] == sha256]
        return matches[-1] if matches else None

    def latest_of(self, target: SubmitTarget, sha256: str) -> dict[str, str] | None:
        """The last row of this CSV (by run and content) or of this kernel version (by competition and label)."""
        if target.kernel is None:
            return self.latest_for(target.run_id, sha256)
        matches = [r for r in self.rows() if r["competition"] == target.competition.slug and r["file"] == target.label]
        return matches[-1] if matches else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


# ---------------------------------------------------------------------------------------- submitting
@dataclass
class _Doubt:
    """Whether the pending token may have reached Kaggle: decides `failed` versus `sending` on a failure."""

    maybe_sent: bool  # a resumed `sending` row starts in doubt, until a list read shows no such token
    lost_here: bool = False  # a create of this process lost its answer: in doubt until found


def submit(target: SubmitTarget, task: Task, session=None, poll: PollPolicy | None = None, again: bool = False,
           wait: bool = True) -> SubmitResult:
    """Validate, send once (adopting an earlier attempt found on Kaggle), log, and wait for the score.
    `task`: the competition's task object (make submit resolves it), which validates a CSV before it is sent."""
    poll = poll or PollPolicy()
    if target.kernel is None:
        validate_file(target, task)  # nothing is sent, nor logged, if this raises
        digest = file_sha256(target.file)
    else:
        check_kernel(target)  # likewise
        digest = ""
    log = SubmissionLog(target.submissions_dir / "log.csv")
    session = session or kaggle_api.KaggleSession()
    with submission_lock(target, digest):
        result, token = _send_phase(target, session, log, digest, again)
    if result.status in ("submitted", "pending") and wait:
        _wait_and_record(session, log, result, token, poll)
    return result


def submission_lock(target: SubmitTarget, digest: str):
    """One writer per submission: the lock of this competition and file (or kernel version)."""
    key = hashlib.sha1(f"{target.label}\0{digest}".encode()).hexdigest()[:12]
    path = target.submissions_dir / ".locks" / f"{target.competition.slug}-{key}.lock"
    return exclusive_lock(path, subject=f"The submission of {target.label} to '{target.competition.slug}'",
                          action="make submit",
                          fix="wait for the other `make submit` to finish (it sends once and logs it); run this "
                              "one again then: it finds that submission in the log and waits for its score")


def _send_phase(target: SubmitTarget, session, log: "SubmissionLog", digest: str, again: bool
                ) -> tuple[SubmitResult, str]:
    """Under the lock: adopt what the log (or Kaggle) already has, else log, send once, record."""
    previous = log.latest_of(target, digest)
    slug = target.competition.slug
    if previous and previous["status"] in SETTLED and not again:
        result = SubmitResult(target, previous["message"], int(previous["ref"] or 0) or None, previous["status"],
                              previous["public_score"], adopted=True, events=["already submitted; not sent again"])
        return result, previous["token"]
    # a `sending` row's outcome is unknown until Kaggle is asked, --again or not: its token is looked for first
    resumed = bool(previous and previous["status"] == "sending")
    if resumed:
        token, message = previous["token"], previous["message"]  # an earlier attempt may have arrived
    else:
        token = secrets.token_hex(6)
        message = submission_message(target, token)
        log.append({"time": _now(), "competition": slug, "file": target.label, "message": message,
                    "cv": target.cv, "status": "sending", "run_id": target.run_id, "token": token,
                    "sha256": digest})
    result = SubmitResult(target, message, None, "sending")
    doubt = _Doubt(maybe_sent=resumed)
    try:
        result.ref, result.adopted = _send_once(session, target, message, token, result.events, doubt)
    except PodiumError as exc:
        if doubt.maybe_sent:  # stays `sending`: the next run looks for this token before sending anything
            log.update(token, note=f"outcome unknown: {exc.what}"[:300])
        else:
            log.update(token, status="failed", note=f"nothing sent: {exc.what}"[:300], time=_now())
        raise
    result.status = "submitted"
    log.update(token, status="submitted", ref=result.ref, time=_now(), note="")
    return result, token


def _send(session, target: SubmitTarget, message: str) -> int:
    slug = target.competition.slug
    if target.kernel is None:
        return send_submission(session, slug, target.file, message)
    return send_code_submission(session, slug, target.kernel.ref, target.kernel.version, message, CODE_OUTPUT)


def _send_once(session, target: SubmitTarget, message: str, token: str, events: list[str],
               doubt: _Doubt) -> tuple[int, bool]:
    """(ref, adopted). Looks for the token before every send, and after a lost answer waits for a late
    list before sending again, so a retry can never duplicate."""
    slug = target.competition.slug
    last: Exception | None = None
    look = True
    for attempt in range(session.retry.attempts):
        if look:
            found = _find(session, slug, token)
            if found is not None:
                events.append(f"found on Kaggle as submission {found['ref']}; not sent again")
                return int(found["ref"]), True
            if not doubt.lost_here:
                doubt.maybe_sent = False  # Kaggle lists no such token, and nothing of ours is in flight
        look = True
        try:
            ref = _send(session, target, message)
            events.append(f"sent as submission {ref}")
            return ref, False
        except OutcomeUnknown as exc:
            last, doubt.maybe_sent, doubt.lost_here = exc, True, True
            events.append(f"attempt {attempt + 1}: the answer was lost ({exc.what}); looking for it on Kaggle")
            found = reconcile(session, slug, token, events)
            if found is not None:
                events.append(f"found on Kaggle as submission {found['ref']}; not sent again")
                return int(found["ref"]), True
            look = False  # just looked, for the whole window
        # any other TransientError certainly sent nothing and was already retried by session.call: raised
    raise PodiumError(f"The submission to '{slug}' could not be confirmed after {session.retry.attempts} attempts.",
                      expected="Kaggle to accept it or list it", received=str(last),
                      fix="run the same command again: it looks for this attempt before sending") from last


def reconcile(session, slug: str, token: str, events: list[str]) -> dict[str, Any] | None:
    """After a create lost its answer: look for the token now, then after growing waits (2, 4, 8, ... s, in
    all RetryPolicy.reconcile_window), since Kaggle lists a new submission only some seconds later."""
    waited, failure = 0.0, None
    for pause in [0.0, *session.retry.reconcile_waits()]:
        if pause:
            session.retry.sleep(pause)
            waited += pause
        try:
            found = _find(session, slug, token)
        except TransientError as exc:
            failure = exc  # the list failed too: keep looking within the window
            continue
        failure = None
        if found is not None:
            return found
    if failure is not None:  # the last look failed: absent from the list is not known, so nothing is re-sent
        raise PodiumError(f"Whether the submission to '{slug}' arrived could not be checked.",
                          expected="the submissions list, to look for this attempt's token",
                          received=str(failure), fix="run the same command again: it looks for this attempt "
                                                     "before sending") from failure
    events.append(f"not listed after {waited:.0f} s of looking; sending again with the same token")
    return None


def _find(session, slug: str, token: str) -> dict[str, Any] | None:
    """This attempt's submission, looked for on every page of the list."""
    return find_submission(session, slug, f"[podium {token}]")


def _wait_and_record(session, log: SubmissionLog, result: SubmitResult, token: str, poll: PollPolicy) -> None:
    status, score, error = wait_for_score(session, result.target.competition.slug, token, poll)
    result.status, result.public_score, result.error = status, score, error
    if error:
        result.events.append(f"Kaggle reported an error: {error}")
    log.update(token, status=status, public_score=score, note=error[:300] if error else "")


def wait_for_score(session, slug: str, token: str, poll: PollPolicy) -> tuple[str, str, str]:
    """Poll the submissions list with backoff until scored, failed, or poll.timeout: (status, score, error)."""
    polling = Polling(poll)
    while True:
        row = _find(session, slug, token)
        if row is not None and row["status"] == "COMPLETE" and row["public_score"] != "":
            return "scored", row["public_score"], ""
        if row is not None and row["status"] == "ERROR":
            return "error", "", row["error"] or "scoring failed"
        if not polling.wait(polling.elapsed()):
            return "pending", "", ""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
