import pytest

from podium.config import ExperimentConfig, load_config, parse_overrides
from podium.errors import PodiumError


def test_precedence_defaults_then_yaml_then_overrides(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("epochs: 7\nlr: 0.01\naugment: [flip]\n")
    cfg = load_config(exp, ["lr=3e-4", "augment=[flip,crop]", "val_split=0.3"])
    assert cfg.epochs == 7  # from the YAML
    assert cfg.lr == pytest.approx(3e-4)  # override beats YAML
    assert cfg.augment == ["flip", "crop"]
    assert cfg.batch_size == ExperimentConfig().batch_size  # default


def test_unknown_key_names_the_key_and_suggests(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("epoch: 3\n")
    with pytest.raises(PodiumError) as err:
        load_config(exp)
    message = str(err.value)
    assert "'epoch'" in message and "did you mean 'epochs'" in message and "Expected" in message


def test_wrong_type_and_bad_choice_rejected():
    with pytest.raises(PodiumError, match="'epochs' has the wrong type"):
        load_config(None, ["epochs=many"])
    with pytest.raises(PodiumError, match="'epochs' has the wrong type"):
        load_config(None, ["epochs=true"])
    with pytest.raises(PodiumError) as err:
        load_config(None, ["schedule=exponential"])
    assert "cosine" in str(err.value) and "piecewise" in str(err.value)


def test_unknown_backbone_lists_valid_ones():
    with pytest.raises(PodiumError) as err:
        load_config(None, ["backbone=resnet9000"])
    assert "resnet9000" in str(err.value) and "efficientnet_b0" in str(err.value)


def test_unknown_augmentation_and_tta_view_rejected():
    with pytest.raises(PodiumError, match="augment"):
        load_config(None, ["augment=[flip,twirl]"])
    with pytest.raises(PodiumError, match="tta"):
        load_config(None, ["tta=[identity,spin]"])


def test_folds_must_exist_for_the_split():
    with pytest.raises(PodiumError, match="folds"):
        load_config(None, ["n_folds=3", "folds=[0,3]"])
    with pytest.raises(PodiumError, match="folds"):
        load_config(None, ["val_split=0.2", "folds=[1]"])


def test_piecewise_needs_one_more_value_than_boundaries():
    with pytest.raises(PodiumError, match="piecewise"):
        load_config(None, ["schedule=piecewise", "lr_boundaries=[3]", "lr_values=[0.1]"])
    cfg = load_config(None, ["schedule=piecewise", "lr_boundaries=[3]", "lr_values=[0.1,0.01]"])
    assert cfg.lr_values == [0.1, 0.01]


def test_override_syntax_error():
    with pytest.raises(PodiumError, match="key=value"):
        parse_overrides(["epochs"])


def test_run_id_follows_the_config_not_paths():
    a = load_config(None, ["epochs=3"])
    b = load_config(None, ["epochs=3", "runs_dir=/elsewhere", "verbose=0", "tta=[identity,zoom_in]"])
    c = load_config(None, ["epochs=4"])
    assert a.run_id == b.run_id
    assert a.run_id != c.run_id


def test_resolved_image_size_comes_from_the_backbone():
    assert load_config(None, ["backbone=efficientnet_b3"]).resolved_image_size == 300
    assert load_config(None, ["backbone=efficientnet_b3", "image_size=128"]).resolved_image_size == 128


def test_shipped_configs_load():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("configs/*.yaml")):
        load_config(path)


def test_every_task_name_has_its_keys_and_its_task_object():
    """podium.task_keys (what config validation and data/ read) and the task objects name the same tasks, and
    the metric a search's pruner watches is one the task logs."""
    from podium.task_keys import TASK_KEYS, TASK_NAMES
    from podium.tasks import TASKS

    assert tuple(TASKS) == TASK_NAMES == tuple(TASK_KEYS)
    for task in TASKS.values():
        assert task.score_logged in [f"val_{name}" for name in task.keys.logged]


# ---- the run's metric decides monitor and mode ---------------------------------------------------------------


def _spec(tmp_path, metric: str, task: str = "classification", extra: str = "") -> str:
    path = tmp_path / f"spec-{abs(hash((metric, task)))}.yaml"
    layout = "" if task == "classification" else "layout: csv\nlabels_csv: train.csv\n"
    path.write_text(f"slug: contract\ntask: {task}\n{layout}metric: {metric}\n{extra}")
    return str(path)


@pytest.mark.parametrize("metric,extra,task,monitor,mode", [
    ("accuracy", "", "classification", "val_accuracy", "max"),  # Keras logs it: no computation of ours
    ("log_loss", "submission_format: probabilities\n", "classification", "val_log_loss", "min"),
    ("roc_auc", "submission_format: probability\n", "classification", "val_roc_auc", "max"),
    ("{name: map_at_k, k: 3}", "submission_format: top_k\n", "classification", "val_map_at_k", "max"),
    ("micro_f1", "", "multilabel", "val_f1", "max"),  # Keras' F1Score(micro) is logged as val_f1
    ("fbeta", "", "multilabel", "val_fbeta", "max"),
    ("dice", "", "segmentation", "val_dice", "max"),
    ("airbus_f2", "", "segmentation", "val_airbus_f2", "max"),
    ("mean_iou", "", "localization", "val_box_iou", "max"),
])
def test_monitor_metric_resolves_to_where_the_metric_is_logged(tmp_path, metric, extra, task, monitor, mode):
    cfg = load_config(None, [f"competition={_spec(tmp_path, metric, task, extra)}", f"task={task}"])
    assert (cfg.monitor, cfg.mode) == ("metric", "auto")
    assert (cfg.resolved_monitor, cfg.resolved_mode) == (monitor, mode)


def test_the_config_metric_overrides_the_spec_and_mode_follows_the_monitor(tmp_path):
    spec = _spec(tmp_path, "accuracy")
    cfg = load_config(None, [f"competition={spec}", "metric=log_loss"])
    assert (cfg.resolved_metric.label, cfg.resolved_monitor, cfg.resolved_mode) == ("log_loss", "val_log_loss", "min")
    assert load_config(None, [f"competition={spec}", "metric=log_loss", "monitor=val_log_loss"]).resolved_mode == "min"
    assert load_config(None, [f"competition={spec}", "monitor=val_loss"]).resolved_mode == "min"
    assert load_config(None, [f"competition={spec}", "monitor=val_loss", "mode=max"]).resolved_mode == "max"
    assert load_config(None, [f"competition={spec}", "monitor=val_accuracy"]).resolved_mode == "max"
    # a mapping and its name(k=...) spelling are one metric, and one run id
    mapped = load_config(None, {"competition": spec, "metric": {"name": "map_at_k", "k": 5}})
    spelled = load_config(None, [f"competition={spec}", "metric=map_at_k(k=5)"])
    assert mapped.metric == "map_at_k(k=5)" and mapped.run_id == spelled.run_id
    assert cfg.run_id != load_config(None, [f"competition={spec}"]).run_id


def test_a_spec_of_another_task_leaves_the_task_its_own_metric():
    cfg = load_config(None, ["task=segmentation", "monitor=metric", "augment=[flip]", "tta=[identity]"])
    assert (cfg.resolved_metric.name, cfg.resolved_monitor, cfg.resolved_mode) == ("dice", "val_dice", "max")


def test_an_unknown_or_unfit_metric_is_refused_with_the_valid_ones():
    with pytest.raises(PodiumError, match="Unknown metric 'log_los'") as err:
        load_config(None, ["metric=log_los"])
    assert "log_loss" in str(err.value)
    with pytest.raises(PodiumError, match="needs the parameter k"):
        load_config(None, ["metric=map_at_k"])
    with pytest.raises(PodiumError, match="metric dice cannot score task classification") as err:
        load_config(None, ["metric=dice"])
    assert "log_loss" in str(err.value)  # the metrics that can
    with pytest.raises(PodiumError, match="not logged by task=segmentation"):
        load_config(None, ["task=segmentation", "monitor=val_log_loss", "augment=[flip]", "tta=[identity]"])


def test_predict_says_the_metric_and_when_tta_lowered_the_score(tmp_path):
    """make predict's summary line and note come from the run's metrics.json, in the metric's direction."""
    import json

    from podium.workflow import run_score_lines

    cfg = load_config(None, [f"runs_dir={tmp_path}", "metric=log_loss", "tta=[identity,hflip]"])
    assert run_score_lines(cfg) == ("", [])  # not trained yet
    cfg.run_dir.mkdir(parents=True)
    record = {"metric": "log_loss", "direction": "min", "cv_mean": 0.40, "cv_std": 0.01, "cv_tta_mean": 0.43,
              "tta_views": ["identity", "hflip"], "folds": [{"fold": 0}]}
    (cfg.run_dir / "metrics.json").write_text(json.dumps(record))
    assert run_score_lines(cfg)[0] == "run CV log_loss (lower is better) 0.4000 (one fold), with TTA 0.4300"
    record["folds"] = [{"fold": 0}, {"fold": 1}]
    (cfg.run_dir / "metrics.json").write_text(json.dumps(record))
    line, notes = run_score_lines(cfg)
    assert line == "run CV log_loss (lower is better) 0.4000 +/- 0.0100, with TTA 0.4300"
    assert len(notes) == 1 and "TTA lowered this run's CV" in notes[0] and 'tta=[identity]' in notes[0]
    (cfg.run_dir / "metrics.json").write_text(json.dumps({**record, "cv_tta_mean": 0.38}))
    assert run_score_lines(cfg)[1] == []  # a lower log loss with TTA is a gain
    (cfg.run_dir / "metrics.json").write_text(json.dumps({**record, "tta_views": ["identity", "vflip"]}))
    assert run_score_lines(cfg)[1] == []  # measured with other views: nothing to say about these


def test_a_monitor_naming_another_registry_metric_is_refused_before_training():
    from podium.training.validation import check_monitor

    check_monitor(load_config(None, ["metric=log_loss", "monitor=val_accuracy"]))  # fit logs it: fine
    check_monitor(load_config(None, ["metric=log_loss", "monitor=val_loss"]))
    with pytest.raises(PodiumError, match="names metric roc_auc, which this run does not compute"):
        check_monitor(load_config(None, ["metric=log_loss", "monitor=val_roc_auc"]))


def test_an_inference_kernel_takes_the_predict_time_keys_its_package_leaves_open():
    """One list, derived from the keys' roles: a new predict-time key reaches the kernel unless package_run
    fixes it; batch_size (a training key) is the one addition."""
    from podium.config import FIXED_IN_PACKAGE, INFERENCE_KEYS, PREDICTION_KEYS
    from podium.kaggle import inference

    assert inference.INFERENCE_KEYS == INFERENCE_KEYS
    assert set(PREDICTION_KEYS) - set(INFERENCE_KEYS) == set(FIXED_IN_PACKAGE) == {"folds", "allow_unfinished",
                                                                                  "tta_auto"}
    assert set(INFERENCE_KEYS) - set(PREDICTION_KEYS) == {"batch_size"}
    assert set(INFERENCE_KEYS) == {"tta", "batch_size", "mask_threshold", "min_object_pixels",  # as written by hand
                                   "box_min_score", "box_nms_iou", "max_boxes", "box_fusion", "wbf_iou"}
