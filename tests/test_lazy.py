"""podium.lazy.LazyModule: a module named at the top and imported on first use, and what that keeps light:
`podium --help`, `import podium.tasks` and the inference kernel's environment check load no keras."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.lazy import LazyModule

REPO = Path(__file__).resolve().parents[1]


def test_the_module_is_imported_on_first_attribute_use_only():
    probe = "podium.figures" if "podium.figures" not in sys.modules else "podium.boxes"
    was_loaded = probe in sys.modules
    lazy = LazyModule(probe)
    assert not lazy.loaded and "not loaded" in repr(lazy)
    assert (probe in sys.modules) == was_loaded  # naming it imports nothing
    assert callable(getattr(lazy, "new_figure" if probe == "podium.figures" else "box_iou"))
    assert lazy.loaded and probe in sys.modules and lazy.module is sys.modules[probe]


def test_a_missing_name_is_the_module_s_own_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        LazyModule("podium.boxes").no_such_name


def test_dunder_probes_do_not_import():
    lazy = LazyModule("podium.no_such_module_at_all")
    assert not hasattr(lazy, "__wrapped__") and not lazy.loaded  # copy/inspect probes stay cheap and safe
    with pytest.raises(ModuleNotFoundError):
        lazy.anything


def test_monkeypatched_attributes_are_seen_through_it(monkeypatch):
    lazy = LazyModule("podium.boxes")
    monkeypatch.setattr(lazy.initialize(), "BOX_FORMATS", ("xyxy",))
    assert lazy.BOX_FORMATS == ("xyxy",)  # every use reads the module, never a copy


@pytest.mark.parametrize("code", [
    "import podium.cli.main",
    "import podium.tasks; import podium.tasks.localization; import podium.tasks.segmentation",
    "import podium.kaggle.inference as i; i.check_environment",
])
def test_light_imports_stay_light(code):
    check = f"import sys; {code}; heavy = [m for m in ('keras', 'tensorflow') if m in sys.modules]; " \
            "assert not heavy, heavy"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
