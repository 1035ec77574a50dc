"""podium.catalog names what a config may choose; the keras registries build exactly those names, and
reading or checking any shipped config loads neither keras nor tensorflow (`podium config` answers in ~2 s,
not ~5 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from podium import catalog
from podium.models import backbones
from podium.training import augment, tta

ROOT = Path(__file__).resolve().parents[1]


def test_the_augment_registries_build_the_catalog_names_in_its_order():
    assert list(augment.BATCH_RECIPES) == list(catalog.BATCH_AUGMENTS) == augment.batch_recipe_names()
    assert list(augment.CPU_RECIPES) == list(catalog.CPU_AUGMENTS) == augment.cpu_recipe_names()


def test_the_tta_views_are_the_catalog_views():
    assert list(tta.VIEWS) == list(catalog.TTA_VIEWS) == tta.view_names()


def test_every_from_scratch_backbone_has_its_builder():
    from_scratch = [name for name, spec in catalog.BACKBONES.items() if not spec.has_pretrained_weights]
    assert sorted(backbones._FROM_SCRATCH) == sorted(from_scratch)
    assert backbones.BACKBONES is catalog.BACKBONES and backbones.get("resnet9") is catalog.backbone("resnet9")


def test_config_choices_are_the_registries():
    assert catalog.CHOICES == {"backbone": tuple(backbones.names()), "augment": tuple(augment.batch_recipe_names()),
                               "cpu_augment": tuple(augment.cpu_recipe_names()), "tta": tuple(tta.view_names())}


LOAD_EVERY_CONFIG = """
import contextlib, io, sys
from pathlib import Path
from podium.cli.main import main
from podium.config import load_config
from podium.data.competitions import builtin_slugs

for path in sorted(Path("configs").glob("*.yaml")):
    load_config(path)
for slug in builtin_slugs():  # no flips: some specs refuse them (flip_invariant: false)
    load_config(None, {"competition": slug, "augment": [], "tta": ["identity"]})
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["config", "--config", "configs/demo.yaml", "epochs=2"]) == 0
    assert main(["config", "--reference", sys.argv[1]]) == 0
print("loaded:", sorted(name for name in ("keras", "tensorflow", "jax", "torch") if name in sys.modules))
"""


def test_loading_every_shipped_config_imports_no_keras(tmp_path):
    """`make config` / `podium config` validate names, sizes and ranges only: nothing there needs keras."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run([sys.executable, "-c", LOAD_EVERY_CONFIG, str(tmp_path / "reference.md")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"
