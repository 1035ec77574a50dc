"""Run ids are where `make train` resumes and `make predict` / `make submit` look: a refactor of the config
must never move them. The ids below were computed before the keys declared their hash role themselves."""

from pathlib import Path

import pytest

from podium.config import load_config

ROOT = Path(__file__).resolve().parents[1]

SHIPPED_RUN_IDS = {
    "configs/airbus-ship-detection.yaml": "airbus-unet-effb0-d5d34f80",
    "configs/cifar10-cpu.yaml": "cifar10-cpu-8ed4f279",
    "configs/cifar10-fast-short.yaml": "cifar10-fast-short-49c266a9",
    "configs/cifar10-fast.yaml": "cifar10-fast-da89dcda",
    "configs/cifar10.yaml": "cifar10-tiny-b868976a",
    "configs/demo.yaml": "demo-4ec137cb",
    "configs/journey-springfield.yaml": "simpsons-effb0-e236e85e",
    "configs/prune-shapes.yaml": "prune-shapes-2cb91299",
    "configs/prune-shapes-10k.yaml": "prune-shapes-10k-a8dbcfbb",
    "configs/sf-dl-car-classification.yaml": "cars-xception-e2b6afb5",
    "configs/shapes-localization.yaml": "shapes-box-52db9070",
    "configs/shapes-multiclass.yaml": "shapes-multiclass-89371e69",
    "configs/shapes-multilabel.yaml": "shapes-multilabel-7bf637e0",
    "configs/shapes-detection.yaml": "shapes-detection-dddb46e8",
    "configs/shapes-regression.yaml": "shapes-regression-e094b489",
    "configs/shapes-segmentation.yaml": "shapes-seg-2a26bf6b",
}

# (config, overrides, run id): prediction-time and plumbing keys never move the id; keys added after runs
# existed move it only away from their default; everything else moves it
OVERRIDDEN_RUN_IDS = [
    ("configs/demo.yaml", ["tta=[identity]", "folds=[0]", "mask_threshold=0.3", "min_object_pixels=0",
                           "allow_unfinished=true", "tta_auto=true"], "demo-4ec137cb"),
    ("configs/demo.yaml", ["data_dir=/elsewhere", "runs_dir=r", "submissions_dir=s", "verbose=0", "workers=4"],
     "demo-4ec137cb"),
    ("configs/demo.yaml", ["task=classification", "decoder=unet", "unet_filters=16", "seg_loss=bce_dice",
                           "box_weight=1.0", "prune_core=11", "prune_threshold=0.85", "prune_chunk=256",
                           "prune_add=1", "prune_add_share=0.0", "prune_max_epochs=30", "precision=float32",
                           "jit_compile=null",
                           "distribute=auto", "keep_empty=1.0", "pseudo_run=", "pseudo_weight=0.5"],
     "demo-4ec137cb"),
    ("configs/demo.yaml", ["unet_filters=8"], "demo-cd11d5ed"),
    ("configs/demo.yaml", ["box_weight=2"], "demo-6caaf114"),
    ("configs/demo.yaml", ["prune_core=20", "prune_threshold=0.9", "prune_chunk=64", "prune_add=2",
                           "prune_max_epochs=5"], "demo-6cdee0eb"),
    ("configs/demo.yaml", ["prune_add_share=0.1"], "demo-a8319e9d"),
    ("configs/demo.yaml", ["precision=mixed_bfloat16"], "demo-ce08936c"),
    ("configs/demo.yaml", ["jit_compile=false"], "demo-161c703f"),
    ("configs/demo.yaml", ["distribute=none"], "demo-a3ccb661"),
    ("configs/demo.yaml", ["seg_loss=dice", "decoder=residual_unet"], "demo-895c24dc"),
    ("configs/demo.yaml", ["pseudo_run=demo-4ec137cb", "pseudo_threshold=0.9"], "demo-a7d2bfe0"),
    ("configs/demo.yaml", ["pseudo_run=demo-4ec137cb", "pseudo_top_share=0.2", "pseudo_weight=1"],
     "demo-f97954de"),
    ("configs/demo.yaml", ["lr=3e-4"], "demo-c8db966c"),
    ("configs/demo.yaml", ["seed=1", "split_seed=3"], "demo-3d2f53ba"),
    ("configs/demo.yaml", ["name=other"], "other-684ea61b"),
    ("configs/shapes-segmentation.yaml", ["keep_empty=0.2"], "shapes-seg-0aea9f62"),
    ("configs/shapes-segmentation.yaml", ["task=segmentation"], "shapes-seg-2a26bf6b"),
    ("configs/shapes-localization.yaml", ["box_weight=3"], "shapes-box-ea3f1311"),
    ("configs/demo.yaml", ["regression_loss=mse"], "demo-4ec137cb"),
    ("configs/shapes-regression.yaml", ["regression_loss=huber"], "shapes-regression-2ed70d73"),
    (None, [], "baseline-08a54a50"),
]


def test_every_shipped_config_is_pinned():
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "configs").glob("*.yaml")}
    assert shipped == set(SHIPPED_RUN_IDS), "a config was added or removed: pin its run id here"


@pytest.mark.parametrize("path", sorted(SHIPPED_RUN_IDS))
def test_shipped_config_keeps_its_run_id(path):
    assert load_config(ROOT / path).run_id == SHIPPED_RUN_IDS[path]


@pytest.mark.parametrize("path,overrides,run_id", OVERRIDDEN_RUN_IDS)
def test_overrides_keep_their_run_id(path, overrides, run_id):
    assert load_config(ROOT / path if path else None, overrides).run_id == run_id


def test_each_key_declares_its_role_beside_it():
    import dataclasses

    from podium.config import ADDED_LATER, PREDICTION_KEYS, ROLES, ExperimentConfig, key, keys_with_role, role_of

    assert all(role_of(f) in ROLES for f in dataclasses.fields(ExperimentConfig))
    assert PREDICTION_KEYS == ("folds", "tta", "mask_threshold", "min_object_pixels", "box_min_score", "box_nms_iou",
                               "max_boxes", "box_fusion", "wbf_iou", "allow_unfinished", "tta_auto")
    assert "pseudo_run" in keys_with_role(ADDED_LATER) and "lr" not in keys_with_role(ADDED_LATER)
    with pytest.raises(TypeError, match="unknown role"):
        key(1, "sometimes")
