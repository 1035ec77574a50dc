"""Fault class "kill": a `make train` killed mid-fit. `make predict` once predicted with the unfinished
fold's early best.keras and said nothing. Now an unfinished fold (no fold-<k>/metrics.json) is refused
unless allow_unfinished=true, every prediction names the folds and best epochs it used, the kill leaves
no lock behind, and the same `make train` resumes."""

import json
import subprocess
import sys

import pytest

from podium.tasks import get_task
from podium.cli.main import main
from podium.config import load_config
from podium.errors import PodiumError
from podium.runners.predict import used_folds
from podium.runners.train import fold_dir_of, fold_finished, train_and_evaluate

KILLED_AT_EPOCH_2 = """
import os, signal, sys
import keras
from podium.config import load_config
from podium.runners.train import train_and_evaluate
from podium.tasks import get_task

class KillAfter(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:  # after the checkpoint, history and backup of epoch 2 were written
            os.kill(os.getpid(), signal.SIGKILL)

cfg = load_config(None, sys.argv[1:])
train_and_evaluate(cfg, get_task(cfg.task), 0, extra_callbacks=[KillAfter()])
"""


def _args(tiny, tmp_path, *more):
    """The tiny demo run, four epochs long (killed after the second)."""
    return tiny.args(tmp_path, "epochs=4", "early_stopping_patience=10", *more)


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_predict_after_kill_9_refuses_the_unfinished_fold_unless_asked(tiny, tmp_path, capsys):
    args = _args(tiny, tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_EPOCH_2, *args], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    cfg = load_config(None, args)
    fold_dir = fold_dir_of(cfg, 0)
    assert (fold_dir / "best.keras").is_file() and not fold_finished(fold_dir)

    code, _, err = _cli(capsys, "predict", *args)
    assert code == 2 and "did not finish" in err and "fold 0 (UNFINISHED: best epoch" in err and "of 2" in err
    assert "allow_unfinished=true" in err and "Traceback" not in err
    assert not (tmp_path / "subs").exists()

    code, out, err = _cli(capsys, "predict", *args, "allow_unfinished=true")
    assert code == 0, err
    assert "made by fold 0 (UNFINISHED: best epoch" in out
    [csv] = (tmp_path / "subs" / "demo").glob("*.csv")
    assert csv.stem.startswith(f"{cfg.run_id}-p")  # not the run's own name: other settings made it
    record = json.loads(csv.with_suffix(".json").read_text())
    assert record["folds_used"][0]["finished"] is False and record["settings"]["allow_unfinished"] is True

    code, out, err = _cli(capsys, "train", *args)  # no stale lock; resumes at epoch 3
    assert code == 0, err
    history = (fold_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 4 and fold_finished(fold_dir)
    code, out, err = _cli(capsys, "predict", *args)
    assert code == 0, err
    assert "made by fold 0 (best epoch" in out and "of 4)" in out and "UNFINISHED" not in out
    assert (tmp_path / "subs" / "demo" / f"{cfg.run_id}.csv").is_file()


class Interrupt(Exception):
    pass


class StopAfter:
    """A callback that stops a fit at the end of `epoch` (0-based), as Ctrl-C would."""

    def __new__(cls, epoch):
        import keras

        class _Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise Interrupt()

        return _Stop()


@pytest.mark.slow
def test_a_fold_being_retrained_is_unfinished_until_it_ends(tiny, tmp_path):
    cfg = load_config(None, _args(tiny, tmp_path, "epochs=2", "tta=[identity]"))
    train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert [u.finished for u in used_folds(cfg)] == [True]
    with pytest.raises(Interrupt):  # FORCE=1 retraining, interrupted: the old metrics.json must not vouch for it
        train_and_evaluate(cfg, get_task(cfg.task), 0, force=True, extra_callbacks=[StopAfter(0)])
    assert not fold_finished(fold_dir_of(cfg, 0))
    with pytest.raises(PodiumError, match="did not finish"):
        used_folds(cfg)
    allowed = load_config(None, _args(tiny, tmp_path, "epochs=2", "tta=[identity]", "allow_unfinished=true"))
    [used] = used_folds(allowed)
    assert not used.finished and used.epochs_run == 1 and used.best_epoch == 1
