"""podium.kaggle.scripts.runtime: where the kernel scripts find Kaggle's folders (or `make rehearse`'s stand-ins
named by PODIUM_KAGGLE_INPUT / PODIUM_KAGGLE_WORKING) and the attached competition's folder."""

from pathlib import Path

import pytest

from podium.kaggle.scripts import runtime


def test_the_roots_are_kaggles_unless_the_environment_points_elsewhere(tmp_path, monkeypatch):
    monkeypatch.delenv("PODIUM_KAGGLE_INPUT", raising=False)
    monkeypatch.delenv("PODIUM_KAGGLE_WORKING", raising=False)
    assert runtime.kaggle_roots() == (Path("/kaggle/input"), Path("/kaggle/working"))
    monkeypatch.setenv("PODIUM_KAGGLE_INPUT", str(tmp_path / "input"))
    monkeypatch.setenv("PODIUM_KAGGLE_WORKING", str(tmp_path / "working"))
    assert runtime.kaggle_roots() == (tmp_path / "input", tmp_path / "working")


def test_the_competition_folder_is_found_in_either_place_kaggle_puts_it(tmp_path):
    (tmp_path / "competitions" / "demo").mkdir(parents=True)
    assert runtime.competition_input(tmp_path, "demo") == tmp_path / "competitions" / "demo"
    (tmp_path / "demo").mkdir()  # the older place wins where both exist
    assert runtime.competition_input(tmp_path, "demo") == tmp_path / "demo"


def test_a_competition_not_attached_stops_the_script_naming_where_it_looked(tmp_path):
    (tmp_path / "demo").write_text("a file, not the folder")
    with pytest.raises(SystemExit, match="competition data is not attached") as caught:
        runtime.competition_input(tmp_path, "demo")
    assert str(tmp_path / "demo") in str(caught.value)
