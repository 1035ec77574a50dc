"""TensorFlow's start-up lines, held to TF_CPP_MIN_LOG_LEVEL: called once where `podium` starts (cli.main).

TF 2.21 logs through absl, and what it logs while its libraries load — "oneDNN custom operations are on",
twice, each after "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
— is written before TF reads TF_CPP_MIN_LOG_LEVEL, so the variable cannot hide it (tensorflow#100442).
Turning oneDNN off (TF_ENABLE_ONEDNN_OPTS=0) would hide the line by changing the CPU kernels, which is not a
logging decision. So the first `import tensorflow` — whoever makes it: keras, tf.data — runs with file
descriptor 2 captured, and what it wrote is written back with TF_CPP_MIN_LOG_LEVEL applied to the log
lines: at the default 2, infos and warnings go, errors (E...) and fatals (F...) stay, and every other line
(a Python warning, a traceback) is kept as it was. TF_CPP_MIN_LOG_LEVEL=0 keeps everything.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

DEFAULT_LEVEL = "2"  # TF's own scale: 0 all, 1 no infos, 2 no warnings either, 3 errors hidden too
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# absl's "I0000 00:00:1796603556.399661    8074 port.cc:153] ..." and TF's older
# "2025-09-17 14:44:05.157831: I external/...cc:32] ..."
LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} \d+:\d+:\d+\.\d+\s+\d+ \S+:\d+\]"
                      r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\])")
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
NOT_A_CONTINUATION = re.compile(r"^(Traceback|\S+\.py:\d+: \w*(Warning|Error)|\s*$)")


def quiet_tensorflow_startup() -> None:
    """TF_CPP_MIN_LOG_LEVEL defaults to 2, and the first `import tensorflow` is filtered by it (see above).
    Nothing is imported here: a verb that never needs TensorFlow does not load it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    if "tensorflow" in sys.modules or any(isinstance(f, _FilteredImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FilteredImport())


def min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_startup_lines(text: str, level: int) -> str:
    """`text` without the log lines below `level` (and the lines a dropped message continued on)."""
    if level <= 0:
        return text
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\n")
        match = LOG_LINE.match(stripped)
        if stripped == ABSL_PREAMBLE:
            dropping = level >= SEVERITY["W"]
        elif match:
            dropping = SEVERITY[match.group(1) or match.group(2)] < level
        elif dropping and NOT_A_CONTINUATION.match(stripped):
            dropping = False  # a message of its own: kept
        if not dropping:
            kept.append(line)
    return "".join(kept)


class _FilteredImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do, and loads it with its start-up output filtered."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: TF is loaded a single time per process
        spec = importlib.util.find_spec(fullname)  # the finders after this one, as Python would ask them
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        capture = tempfile.TemporaryFile()
        os.dup2(capture.fileno(), 2)
        try:
            self.loader.exec_module(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            capture.close()
            kept = filter_startup_lines(text, min_level())
            if kept:
                os.write(2, kept.encode("utf-8"))
