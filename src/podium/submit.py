"""`make submit`: validate locally, send exactly once, log it, wait for the public score.

Exactly once: each attempt carries a token in its message, and the log row (status "sending") is written
before anything is sent. Before every send, and after any failure, the submissions list is searched for
that token: if Kaggle already has it (a connection reset after CreateSubmission reached the server, a
crash, a re-run) it is adopted, never sent again. A file already submitted and logged is not re-sent
unless asked (`again`), so re-running the command only resumes the wait for the score.
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
from typing import Any, Callable, Iterator

import pandas as pd

from podium.competitions import CompetitionSpec, load_competition
from podium.config import ExperimentConfig, load_config
from podium.errors import PodiumError
from podium.io import atomic_path

LOG_COLUMNS = ["time", "competition", "file", "message", "cv", "status", "public_score", "ref", "run_id",
               "token", "sha256"]
SETTLED = {"submitted", "scored", "pending", "error"}  # a row in one of these states was received by Kaggle


@dataclass
class PollPolicy:
    """Bounded wait with backoff; sleep and clock injectable so tests take no time."""

    timeout: float = 1800.0
    interval: float = 10.0
    max_interval: float = 120.0
    factor: float = 1.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class SubmitTarget:
    run_id: str
    competition: CompetitionSpec
    file: Path
    cv: float | None
    config_hash: str
    data_root: Path
    submissions_dir: Path


@dataclass
class SubmitResult:
    target: SubmitTarget
    message: str
    ref: int | None
    status: str
    public_score: str = ""
    adopted: bool = False  # found already on Kaggle (sent by an earlier attempt), not sent again
    events: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ what to submit
def resolve_target(run_id: str | None = None, cfg: ExperimentConfig | None = None,
                   runs_dir: str = "runs") -> SubmitTarget:
    """The run's submission file, competition and CV score, from the run id or the config."""
    if cfg is None:
        if not run_id:
            raise PodiumError("Nothing to submit was named.", expected="RUN=<run-id> or EXP=<config>",
                              received="neither", fix="make submit RUN=<run-id> (see runs/)")
        saved = Path(runs_dir) / run_id / "config.yaml"
        if not saved.is_file():
            raise PodiumError(f"Run '{run_id}' has no saved config.", expected=str(saved),
                              received="no such file", fix="check the run id against the folders in runs/")
        cfg = load_config(saved)
    spec = load_competition(cfg.competition)
    run_id = cfg.run_id
    path = Path(cfg.submissions_dir) / spec.slug / f"{run_id}.csv"
    if not path.is_file():
        raise PodiumError(f"Run '{run_id}' has no submission file.", expected=str(path), received="no such file",
                          fix="make predict EXP=<its config> first")
    metrics = Path(cfg.runs_dir) / run_id / "metrics.json"
    cv = json.loads(metrics.read_text(encoding="utf-8")).get("cv_mean") if metrics.is_file() else None
    return SubmitTarget(run_id=run_id, competition=spec, file=path, cv=cv, config_hash=cfg.config_hash(),
                        data_root=Path(cfg.data_dir) / spec.slug, submissions_dir=Path(cfg.submissions_dir))


def validate_file(target: SubmitTarget) -> None:
    """The same validator `make predict` ran, for the competition's task, against its sample: no network."""
    from podium.data.dataset import test_rows
    from podium.data.index import class_names, image_shapes, load_index
    from podium.submission import read_sample_submission, validate_submission

    spec = target.competition
    index_path = target.data_root / "index.parquet"
    if not index_path.is_file():
        raise PodiumError("The competition's data is not prepared, so the submission cannot be checked.",
                          expected=str(index_path), received="no index", fix=f"make data COMP={spec.slug}")
    sample = read_sample_submission(target.data_root / spec.sample_submission, spec.submission_id_column,
                                    spec.submission_label_column)
    frame = pd.read_csv(target.file, dtype=str, keep_default_na=False)
    index = load_index(index_path)
    if spec.task == "segmentation":
        from podium.submission_masks import validate_mask_submission

        validate_mask_submission(frame, sample, spec.submission_id_column, spec.submission_label_column,
                                 image_shapes(test_rows(index)))
    elif spec.task == "localization":
        from podium.submission_boxes import validate_box_submission

        validate_box_submission(frame, sample, spec, class_names(index, spec), image_shapes(test_rows(index)))
    else:
        validate_submission(frame, sample, spec.submission_id_column, spec.submission_label_column,
                            class_names(index, spec))


def submission_message(target: SubmitTarget, token: str) -> str:
    cv = f"{target.cv:.4f}" if target.cv is not None else "n/a"
    return f"{target.run_id} cfg {target.config_hash} cv {cv} [podium {token}]"


# ------------------------------------------------------------------------------------------- the log
class SubmissionLog:
    """submissions/log.csv: one row per submission; rewritten atomically under a lock, rows never dropped."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="", encoding="utf-8") as handle:
            return [{k: (row.get(k) or "") for k in LOG_COLUMNS} for row in csv.DictReader(handle)]

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = self.rows()
            yield rows
            with atomic_path(self.path) as tmp:
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


# ---------------------------------------------------------------------------------------- submitting
def submit(target: SubmitTarget, session=None, poll: PollPolicy | None = None, again: bool = False,
           wait: bool = True) -> SubmitResult:
    """Validate, send once (adopting an earlier attempt found on Kaggle), log, and wait for the score."""
    from podium import kaggle_api

    poll = poll or PollPolicy()
    validate_file(target)  # nothing is sent, nor logged, if this raises
    log = SubmissionLog(target.submissions_dir / "log.csv")
    digest = hashlib.sha256(target.file.read_bytes()).hexdigest()
    previous = log.latest_for(target.run_id, digest)
    session = session or kaggle_api.KaggleSession()
    slug = target.competition.slug
    if previous and previous["status"] in SETTLED and not again:
        result = SubmitResult(target, previous["message"], int(previous["ref"] or 0) or None, previous["status"],
                              previous["public_score"], adopted=True, events=["already submitted; not sent again"])
        if previous["status"] in ("submitted", "pending") and wait:
            _wait_and_record(session, log, result, previous["token"], poll)
        return result
    if previous and previous["status"] == "sending" and not again:
        token, message = previous["token"], previous["message"]  # an earlier attempt may have arrived
    else:
        token = secrets.token_hex(6)
        message = submission_message(target, token)
        log.append({"time": _now(), "competition": slug, "file": str(target.file), "message": message,
                    "cv": target.cv, "status": "sending", "run_id": target.run_id, "token": token,
                    "sha256": digest})
    result = SubmitResult(target, message, None, "sending")
    result.ref, result.adopted = _send_once(session, slug, target.file, message, token, result.events)
    result.status = "submitted"
    log.update(token, status="submitted", ref=result.ref, time=_now())
    if wait:
        _wait_and_record(session, log, result, token, poll)
    return result


def _send_once(session, slug: str, path: Path, message: str, token: str, events: list[str]) -> tuple[int, bool]:
    """(ref, adopted). Looks for the token before every send, so a retry can never duplicate."""
    from podium.kaggle_api import TransientError, list_submissions, send_submission

    last: Exception | None = None
    for attempt in range(session.retry.attempts):
        found = _find(list_submissions(session, slug), token)
        if found is not None:
            events.append(f"found on Kaggle as submission {found['ref']}; not sent again")
            return int(found["ref"]), True
        try:
            ref = send_submission(session, slug, path, message)
            events.append(f"sent as submission {ref}")
            return ref, False
        except TransientError as exc:
            last = exc
            delay = session.retry.delay(attempt, exc.retry_after)
            events.append(f"attempt {attempt + 1} failed ({exc.what}); looking for it, retrying in {delay:.0f} s")
            session.retry.sleep(delay)
    raise PodiumError(f"The submission to '{slug}' could not be confirmed after {session.retry.attempts} attempts.",
                      expected="Kaggle to accept it or list it", received=str(last),
                      fix="run the same command again: it looks for this attempt before sending") from last


def _find(rows: list[dict[str, Any]], token: str) -> dict[str, Any] | None:
    marker = f"[podium {token}]"
    return next((row for row in rows if marker in row["description"]), None)


def _wait_and_record(session, log: SubmissionLog, result: SubmitResult, token: str, poll: PollPolicy) -> None:
    status, score, error = wait_for_score(session, result.target.competition.slug, token, poll)
    result.status, result.public_score = status, score
    if error:
        result.events.append(f"Kaggle reported an error: {error}")
    log.update(token, status=status, public_score=score)


def wait_for_score(session, slug: str, token: str, poll: PollPolicy) -> tuple[str, str, str]:
    """Poll the submissions list with backoff until scored, failed, or poll.timeout: (status, score, error)."""
    from podium.kaggle_api import list_submissions

    started, interval = poll.clock(), poll.interval
    while True:
        row = _find(list_submissions(session, slug), token)
        if row is not None and row["status"] == "COMPLETE" and row["public_score"] != "":
            return "scored", row["public_score"], ""
        if row is not None and row["status"] == "ERROR":
            return "error", "", row["error"] or "scoring failed"
        if poll.clock() - started + interval > poll.timeout:
            return "pending", "", ""
        poll.sleep(interval)
        interval = min(interval * poll.factor, poll.max_interval)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
