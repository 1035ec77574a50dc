"""Every write podium makes: atomic (a reader sees the old file or the new one, never half of either),
with the user's umask, leftovers of killed writers cleaned, and write faults (disk full, read-only or
foreign folder) turned into one PodiumError that names the file, the space and the fix.

Also the one YAML reader (configs, competition and kernel specs, search spaces): a syntax error names
the file, line and column instead of a parser traceback.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import yaml

from podium.errors import PodiumError

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
WRITE_FAULTS = DISK_FULL | NOT_WRITABLE
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]  # temp files of this machine only
_UMASK_LOCK = threading.Lock()


# ---- write faults ---------------------------------------------------------------------------------
def format_size(n_bytes: float) -> str:
    """A size with the unit that shows the number: 512 bytes, 3.4 KiB, 120.0 MiB, 2.50 GiB (never 0.00 GiB)."""
    n_bytes = float(n_bytes)
    if abs(n_bytes) < 1024:
        return f"{int(n_bytes)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n_bytes /= 1024
        if abs(n_bytes) < 1024 or unit == "TiB":
            return f"{n_bytes:.2f} {unit}" if unit in ("GiB", "TiB") else f"{n_bytes:.1f} {unit}"
    raise AssertionError("unreachable")


def write_fault(exc: BaseException, path: str | os.PathLike | None = None, needed: int | None = None
                ) -> PodiumError | None:
    """The PodiumError for a failed write (disk full, quota, read-only, permission), or None when `exc`
    is not one. `path` is the file podium meant to write; `needed` the bytes it needed, when known."""
    code = _fault_code(exc)
    if code is None:
        return None
    target = Path(getattr(exc, "filename", None) or path or ".")
    if code in NOT_WRITABLE and path is not None and not _related(target, Path(path)):
        return None  # e.g. an unreadable source file: a read problem, not this write's
    if code in (errno.EACCES, errno.EPERM) and path is None and target.exists() and not os.access(target, os.R_OK):
        return None  # an existing file we may not read: not a write fault
    shown = Path(path) if path is not None else target
    folder = _existing_folder(shown if code in DISK_FULL else target)  # full: the disk; denied: the very folder
    reason = os.strerror(code)
    if code in DISK_FULL:
        free = _free_bytes(folder)
        what = {errno.EFBIG: "The file size limit is reached", errno.EDQUOT: "The disk quota is used up"}.get(
            code, "The disk is full") + f": writing {shown} failed ({reason})."
        expected = (f"{format_size(needed)} free" if needed else "free space") + f" in {folder}"
        fix = ("raise the file size limit (`ulimit -f`)" if code == errno.EFBIG else
               "free some space on that disk (or point data_dir / runs_dir at a larger one)")
        return PodiumError(what, expected=expected, received=f"{format_size(free)} free there",
                           fix=f"{fix}, then run the same command again")
    why = "is on a read-only file system" if code == errno.EROFS else "is not writable by this user"
    return PodiumError(f"Cannot write {shown}: the folder {folder} {why}.", expected="a writable folder",
                       received=reason,
                       fix=f"make {folder} writable (chmod u+w, or remount it read-write), or set data_dir / "
                           f"runs_dir to a writable folder")


@contextlib.contextmanager
def guarded_write(path: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Inside the block, a write fault becomes write_fault's PodiumError; any other error passes through."""
    try:
        yield
    except PodiumError:
        raise
    except (OSError, RuntimeError) as exc:  # h5py reports some faults as RuntimeError/OSError without errno
        error = write_fault(exc, path, needed)
        if error is None:
            raise
        raise error from exc


def _fault_code(exc: BaseException) -> int | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # h5py and keras wrap the OSError
        seen.add(id(exc))
        code = getattr(exc, "errno", None)
        if code in WRITE_FAULTS:
            return code
        text = str(exc)
        if "No space left on device" in text or "errno = 28" in text:
            return errno.ENOSPC
        if "Read-only file system" in text or "errno = 30" in text:
            return errno.EROFS
        if "errno = 13" in text:
            return errno.EACCES
        exc = exc.__cause__ or exc.__context__
    return None


def _related(failed: Path, written: Path) -> bool:
    """Did the failing file belong to this write: the file, a sibling temp, a folder above or inside it?"""
    failed, written = Path(os.path.abspath(failed)), Path(os.path.abspath(written))
    return (failed == written or failed.parent == written.parent or written.is_relative_to(failed)
            or failed.is_relative_to(written))


def _existing_folder(path: Path) -> Path:
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def free_space(path: str | os.PathLike) -> int:
    """Free bytes on the disk that holds `path` (its nearest existing folder when it is not made yet)."""
    return _free_bytes(_existing_folder(Path(path)))


def check_free_space(folder: str | os.PathLike, needed: float, what: str, fix: str) -> None:
    """Refuse before a large write (an unpack, a cache) that cannot fit, with sizes people can read."""
    folder = Path(folder)
    with guarded_write(folder):
        folder.mkdir(parents=True, exist_ok=True)
    free = _free_bytes(folder)
    if needed > free:
        raise PodiumError(f"Not enough free disk space for {what}.",
                          expected=f"at least {format_size(needed)} free in {folder}",
                          received=f"{format_size(free)} free", fix=fix)


def preallocate(path: str | os.PathLike, size: int, target: str | os.PathLike | None = None) -> None:
    """Reserve a file's blocks before writing it through a memmap: a memmap written past a full disk dies of
    SIGBUS, with no error to catch. Faults name `target` (the file being made), else `path`."""
    allocate = getattr(os, "posix_fallocate", None)  # not on macOS: the memmap then allocates lazily
    if allocate is None or size <= 0:
        return
    with guarded_write(target or path, size), open(path, "r+b" if Path(path).exists() else "w+b") as handle:
        try:
            allocate(handle.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


def make_dirs(folder: str | os.PathLike) -> Path:
    """mkdir -p whose faults read like every other write's."""
    folder = Path(folder)
    with guarded_write(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- atomic writes --------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.

    The temp name carries this machine and process (`.<name>.<host>-<pid>-<random>.tmp<suffix>`), so the
    next write of the same file removes what a killed writer left, and never a live writer's file.
    `suffix` is for writers that insist on an extension (Keras: `.weights.h5`, `.keras`). The file gets
    the mode of any new file (0666 less the umask), not mkstemp's 0600, unless `mode` is given (0o600 for
    a private file). Write faults become PodiumError.
    """
    path = Path(path)
    with guarded_write(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}-", suffix=f".tmp{suffix}",
                                   dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, (0o666 & ~current_umask()) if mode is None else mode)
            os.replace(tmp_path, path)
        finally:
            tmp_path.unlink(missing_ok=True)


def temp_owner(name: str, target_name: str) -> int | None:
    """The pid in an atomic_path temp name of `target_name` written on this machine, else None."""
    match = re.fullmatch(rf"\.{re.escape(target_name)}\.{_HOST}-(\d+)-[A-Za-z0-9_]+\.tmp.*", name)
    return int(match.group(1)) if match else None


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temp files of `path` whose writer (a process on this machine) is gone: a kill -9 leftover."""
    path = Path(path)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(f".{path.name}."):
            continue
        pid = temp_owner(entry.name, path.name)
        if pid is not None and not pid_alive(pid):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else set-and-restore."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


# ---- YAML -----------------------------------------------------------------------------------------
def parse_yaml(text: str, source: str) -> Any:
    """yaml.safe_load, with a syntax error as a PodiumError naming `source`, the line and the column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            raise PodiumError(f"{source} is not valid YAML: {problem}.", expected="valid YAML",
                              received=str(exc), fix=f"correct the syntax of {source}") from None
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        raise PodiumError(f"{source}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({problem}).",
                          expected="YAML, e.g. `key: value` or `key: [a, b]`",
                          received=f"line {mark.line + 1}: {line.strip()!r}",
                          fix=f"correct {f'line {mark.line + 1} of ' if len(lines) > 1 else ''}{source} (look for an "
                              f"unclosed bracket or quote, a tab, or a missing space after ':')") from None


def read_yaml_mapping(path: str | os.PathLike, kind: str, example: str, layout_hint: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (a config, a spec, a space): missing, malformed or not a mapping
    is a PodiumError naming the file (and the line and column of a syntax error)."""
    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"{kind} {path} does not exist.", expected=f"a YAML {kind.lower()}",
                          received=str(path), fix=f"pass an existing file, e.g. {example}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PodiumError(f"{kind} {path} is not text.", expected="a UTF-8 YAML file",
                          received=f"byte {exc.start}: {exc.reason}", fix=f"pass the YAML file, e.g. {example}") from None
    loaded = parse_yaml(text, f"{kind} {path}") or {}
    if not isinstance(loaded, dict):
        raise PodiumError(f"{kind} {path} is not a mapping.", expected="key: value lines",
                          received=type(loaded).__name__, fix=layout_hint)
    return loaded


# ---- writers --------------------------------------------------------------------------------------
def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv(path: str | os.PathLike, frame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def write_parquet(path: str | os.PathLike, frame) -> Path:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


# ---- content hashes -------------------------------------------------------------------------------
def hash_file(digest: Any, path: str | os.PathLike) -> Any:
    """Feed `path`'s bytes to a hashlib `digest` in 1 MiB blocks (weights and archives need not fit in memory)."""
    with Path(path).open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes, streamed."""
    return hash_file(hashlib.sha256(), path).hexdigest()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
