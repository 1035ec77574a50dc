"""Fault class "untraceable output": `make predict ARGS="tta=[...]"` once overwrote the run's submission,
and neither the name nor the run said which views made the file. Now the run's own settings write
`<run-id>.csv` (what `make submit RUN=<run-id>` sends), any other prediction settings write
`<run-id>-p<hash>.csv`, and a sidecar beside each records what made it, down to the CSV's sha256."""

import hashlib
import json

import pytest

from podium.cli.main import main
from podium.config import PREDICTION_KEYS, load_config, save_config
from podium.submission.record import prediction_settings, submission_path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_names_follow_the_prediction_settings_not_the_run_alone(tmp_path):
    base = load_config(None, [f"runs_dir={tmp_path}", f"submissions_dir={tmp_path / 'subs'}"])
    save_config(base, base.run_dir / "config.yaml")  # as `make train` leaves it
    own = submission_path(base)
    assert own.name == f"{base.run_id}.csv"
    names = {own.name}
    for override in ("tta=[identity]", "tta=[hflip,identity]", "allow_unfinished=true", "mask_threshold=0.3",
                     "min_object_pixels=0", "n_folds=5 folds=[0,1]"):
        cfg = load_config(None, [f"runs_dir={tmp_path}", f"submissions_dir={tmp_path / 'subs'}", *override.split()])
        assert cfg.run_id == base.run_id  # the same trained run...
        path = submission_path(cfg)
        assert path.name.startswith(f"{base.run_id}-p") and path.name not in names  # ...another file each
        names.add(path.name)
    assert set(prediction_settings(base)) == set(PREDICTION_KEYS)


@pytest.mark.slow
def test_each_prediction_has_its_own_file_and_a_record_of_what_made_it(tiny, tmp_path, capsys):
    args = tiny.args(tmp_path, "tta=[identity,hflip]")  # the run's own views; the test predicts with others
    assert main(["train", *args]) == 0
    assert main(["predict", *args]) == 0
    cfg = load_config(None, args)
    own = tmp_path / "subs" / "demo" / f"{cfg.run_id}.csv"
    first = _sha(own)
    assert main(["predict", *args, "tta=[identity]"]) == 0
    out = capsys.readouterr().out
    [other] = [p for p in own.parent.glob("*.csv") if p != own]
    assert str(other) in out and other.stem.startswith(f"{cfg.run_id}-p")
    assert _sha(own) == first  # the run's own submission is untouched

    for path, views in ((own, ["identity", "hflip"]), (other, ["identity"])):
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["sha256"] == _sha(path) and record["file"] == path.name
        assert record["run_id"] == cfg.run_id and record["config_hash"] == cfg.config_hash()
        assert record["settings"]["tta"] == views and record["run_settings"]["tta"] == ["identity", "hflip"]
        assert [f["fold"] for f in record["folds_used"]] == [0] and record["folds_used"][0]["best_epoch"] == 1
        assert record["data"]["index_fingerprint"] and record["data"]["split_fingerprint"]
    last = json.loads((cfg.run_dir / "test_predictions.json").read_text())
    assert last["settings"]["tta"] == ["identity"]  # the run says what made its test_predictions.npy

    from podium.kaggle.submit import resolve_target

    assert resolve_target(run_id=cfg.run_id, runs_dir=str(tmp_path / "runs")).file == own  # make submit RUN=
