"""What a user sees from the command line: exit codes and messages, never a traceback for bad input."""

import pytest

from podium.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_config_key_exits_2_with_a_fix(capsys):
    code, _, err = _run(capsys, "config", "epochz=3")
    assert code == 2
    assert "Unknown config key 'epochz'" in err and "did you mean 'epochs'" in err and "Traceback" not in err


def test_unknown_backbone_exits_2(capsys):
    code, _, err = _run(capsys, "config", "backbone=resnet9000")
    assert code == 2 and "efficientnet_b0" in err


def test_missing_data_folder_says_run_make_data(capsys, tmp_path):
    code, _, err = _run(capsys, "train", f"data_dir={tmp_path}", f"runs_dir={tmp_path / 'runs'}")
    assert code == 2 and "make data" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("best.keras"))


def test_bad_override_syntax(capsys):
    code, _, err = _run(capsys, "config", "epochs")
    assert code == 2 and "key=value" in err


def test_config_prints_the_resolved_config(capsys):
    code, out, _ = _run(capsys, "config", "epochs=3")
    assert code == 0 and "epochs: 3" in out and "run_id: baseline-" in out
