"""An install without an area's extra still trains, and that area names the extra to install. The
missing package is real to the interpreter: a fresh process whose import system refuses it."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("kaggle", "kagglesdk", "optuna", "albumentations")

BLOCK = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""


def _run_without(blocked, code):
    script = f"BLOCKED = {tuple(blocked)!r}\n{BLOCK}\n{textwrap.dedent(code)}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_ALBUMENTATIONS_UPDATE": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_without_any_extra_the_training_path_imports_and_the_cli_answers():
    code, out = _run_without(OPTIONAL, """
        for name in BLOCKED:
            try:
                __import__(name)
            except ModuleNotFoundError:
                continue
            sys.exit(f"{name} is still importable")
        import podium.training.augment, podium.runners.predict, podium.runners.train, podium.workflow
        from podium.cli.main import main
        from podium.config import load_config

        assert load_config("configs/demo.yaml", ["cpu_augment=none"]).run_id == "demo-4ec137cb"
        assert podium.training.augment.make_batch_augmenter(["flip", "crop"], 32, seed=0) is not None
        sys.exit(main(["config", "--config", "configs/demo.yaml"]))
    """)
    assert code == 0, out
    assert "run_id: demo-4ec137cb" in out


def test_a_cpu_augment_recipe_without_albumentations_names_the_augment_extra():
    code, out = _run_without(["albumentations"], """
        from podium.training.augment import make_cpu_augmenter
        from podium.errors import PodiumError

        try:
            make_cpu_augmenter("light", 32, seed=0)
        except PodiumError as err:
            print(err)
    """)
    assert code == 0, out
    assert "needs the optional package 'albumentations'" in out and "pip install 'podium[augment]'" in out


def test_the_search_without_optuna_names_the_search_extra():
    code, out = _run_without(["optuna"], """
        from podium.cli.main import main

        sys.exit(main(["search", "--space", "configs/search/demo-space.yaml"]))
    """)
    assert code == 2, out
    assert "needs the optional package 'optuna'" in out and "pip install 'podium[search]'" in out


def test_kaggle_without_its_client_names_the_kaggle_extra():
    code, out = _run_without(["kaggle", "kagglesdk"], """
        from podium.kaggle.credentials import Credentials
        from podium.errors import PodiumError
        from podium.kaggle.session import _build_api

        try:
            _build_api(Credentials(username="someone", key="0" * 32))
        except PodiumError as err:
            print(err)
    """)
    assert code == 0, out
    assert "needs the optional package 'kaggle'" in out and "pip install 'podium[kaggle]'" in out


# ------------------------------------------------------------------------------------------ in process
def test_require_returns_an_installed_module_and_names_the_extra_of_a_missing_one(monkeypatch):
    """The same check in this process: sys.modules holding None makes the import system refuse a name."""
    from podium import extras
    from podium.errors import PodiumError

    assert extras.require("json.decoder").JSONDecoder  # a module that is there comes back as it is
    for module, extra in (("optuna", "search"), ("albumentations", "augment"), ("kagglesdk.kaggle_client", "kaggle")):
        for name in {module, module.partition(".")[0]}:  # absent even where an earlier test imported it
            monkeypatch.setitem(sys.modules, name, None)
        with pytest.raises(PodiumError, match=f"optional package '{module.partition('.')[0]}'") as caught:
            extras.require(module)
        assert f"pip install 'podium[{extra}]'" in caught.value.fix
        assert str(caught.value).startswith(extras.NEEDED_FOR[extra])


def test_a_missing_dependency_of_an_installed_package_is_not_blamed_on_its_extra(tmp_path, monkeypatch):
    """optuna is there, but something it imports is not: its own ModuleNotFoundError says what."""
    (tmp_path / "optuna").mkdir()
    (tmp_path / "optuna" / "__init__.py").write_text("import podium_test_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "optuna", raising=False)
    from podium import extras

    with pytest.raises(ModuleNotFoundError, match="podium_test_absent_dependency"):
        extras.require("optuna")
