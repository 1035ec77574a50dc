"""What a user sees from the command line: exit codes and messages, never a traceback for bad input."""

import pytest

from podium.cli.main import main


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


def test_corrupt_images_are_reported_and_skipped_not_fatal(capsys, tmp_path):
    """A competition folder with a truncated JPEG and a zero-byte file: `make data` indexes the rest."""
    import zipfile

    from tests_support import real_demo_jpegs

    source = tmp_path / "source"
    source.mkdir()
    jpegs = real_demo_jpegs(6)
    with zipfile.ZipFile(source / "train.zip", "w") as zf:
        for i, data in enumerate(jpegs):
            zf.writestr(f"train/{'cat' if i % 2 else 'dog'}/{i}.jpg", data)
        zf.writestr("train/cat/truncated.jpg", jpegs[0][: len(jpegs[0]) // 2])
        zf.writestr("train/dog/empty.jpg", b"")
    with zipfile.ZipFile(source / "test.zip", "w") as zf:
        zf.writestr("test/1.jpg", jpegs[0])
    (source / "sample_submission.csv").write_text("id,label\n1,cat\n")
    spec = tmp_path / "mini.yaml"
    spec.write_text("slug: mini\narchives: [train.zip, test.zip]\n")
    code, out, err = _run(capsys, "data", "--competition", str(spec), "--source", str(source),
                          "--data-dir", str(tmp_path / "data"))
    assert code == 0, err
    assert "6 train images" not in out and "8 train images in 2 classes" in out
    assert "2 unreadable image(s) skipped" in out
    assert "truncated.jpg" in out and "empty.jpg" in out
