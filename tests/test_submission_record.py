"""podium.submission.record: a submission is named by its run, with -p<hash> when it was predicted with other
settings than the run's own, and recorded beside it with its digest, settings and folds."""

import hashlib
import json

from podium.config import load_config, save_config
from podium.submission import record


def _cfg(tmp_path, *more):
    return load_config(None, [f"runs_dir={tmp_path / 'runs'}", f"submissions_dir={tmp_path / 'subs'}", *more])


def test_the_runs_own_settings_name_the_file_after_the_run_and_others_add_their_hash(tmp_path):
    cfg = _cfg(tmp_path, "tta=[identity]")
    assert record.submission_path(cfg) == tmp_path / "subs" / "demo" / f"{cfg.run_id}.csv"
    cfg.run_dir.mkdir(parents=True)
    save_config(cfg, cfg.run_dir / "config.yaml")
    other = _cfg(tmp_path, "tta=[identity,hflip]")
    assert other.run_id == cfg.run_id  # predict-time settings do not change the run
    settings = record.prediction_settings(other)
    assert settings["tta"] == ["identity", "hflip"]
    assert record.submission_path(other).name == f"{cfg.run_id}-p{record.settings_hash(settings)}.csv"
    assert record.settings_hash(settings) != record.settings_hash(record.prediction_settings(cfg))
    assert record.run_prediction_settings(other)["tta"] == ["identity"]  # what the run was saved with


def test_the_record_names_the_file_its_digest_settings_and_folds(tmp_path):
    cfg = _cfg(tmp_path)
    submission = tmp_path / "subs" / "demo" / "x.csv"
    submission.parent.mkdir(parents=True)
    submission.write_text("id,label\n1,cat\n")
    path = record.write_record(cfg, submission, [{"fold": 0, "epoch": 3}], {"split": "folds.csv"})
    assert path == record.record_path(submission) == submission.with_suffix(".json")
    written = json.loads(path.read_text())
    assert written["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    assert (written["file"], written["run_id"], written["folds_used"]) == ("x.csv", cfg.run_id,
                                                                           [{"fold": 0, "epoch": 3}])
    assert written["settings"] == json.loads(json.dumps(record.prediction_settings(cfg)))
    assert written["run_settings"]["allow_unfinished"] is False
