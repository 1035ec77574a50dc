"""Fault class "concurrency": two processes on one run folder. Two `make train` of one config once gave a
wrong 6-of-8-epoch history in one and an HDF5 lock traceback in the other. Now one holds the run's lock
and the other is refused, naming the holder; a killed holder (kill -9) never leaves a stale lock.

The other process is real (a subprocess) and the tests wait on its pipe, never on time."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from podium.training.run_lock import LOCK_NAME, run_lock

HOLDER = """
import sys
from podium.training.run_lock import run_lock
with run_lock(sys.argv[1], "train"):
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test closes the pipe
print("released", flush=True)
"""


@pytest.fixture
def holder():
    """Start a process that takes a run folder's lock; yields a function: run_dir -> Popen, once it holds."""
    started = []

    def start(run_dir):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_train_of_the_same_run_is_refused_naming_the_holder(tiny, tmp_path, capsys, holder):
    args = tiny.args(tmp_path)
    run_dir = load_config(None, args).run_dir
    proc = holder(run_dir)
    code = main(["train", *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"pid {proc.pid} on {socket.gethostname()}" in err and "in use by another podium process" in err
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
    code = main(["predict", *args])  # a predict would read the half-trained fold: refused the same way
    assert code == 2 and f"pid {proc.pid}" in capsys.readouterr().err

    proc.stdin.close()
    assert proc.stdout.readline().strip() == "released"
    proc.wait()
    with run_lock(run_dir):  # free again
        assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_kill_9_of_the_holder_leaves_no_stale_lock(tmp_path, holder):
    proc = holder(tmp_path / "run")
    with pytest.raises(PodiumError, match=f"pid {proc.pid}"):
        with run_lock(tmp_path / "run"):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # the kernel drops a dead process's flock: no clean-up ran, none is needed
    with run_lock(tmp_path / "run", "train"):
        pass


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path, holder):
    with run_lock(tmp_path / "run", "train"):
        with run_lock(tmp_path / "run", "train"):  # make train holds the run; each fold takes it again
            pass
        with pytest.raises(subprocess.CalledProcessError):  # still ours after the inner release
            subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path / "run")], input="", capture_output=True,
                           text=True, check=True)
    proc = holder(tmp_path / "run")  # released: another process takes it
    proc.stdin.close()
    proc.wait()
