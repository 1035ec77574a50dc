"""`make data`'s sources behind one interface (podium.data.sources): which one a call uses, and that the
entry point hands down one for every `source:` a spec may name."""

from __future__ import annotations

import typing

import pytest

from podium.cli.data import data_sources
from podium.data.competitions import CompetitionSpec, load_competition
from podium.data.extract import fetch
from podium.data.sources import EMBEDDED, FolderSource, KeptFiles, pick_source
from podium.errors import PodiumError
from podium.experiments.synthetic_files import GENERATED_SOURCE
from podium.kaggle.source import KAGGLE_SOURCE


def test_the_cli_hands_down_a_source_for_every_kind_a_spec_may_name():
    sources = data_sources()
    assert set(sources) == set(typing.get_args(typing.get_type_hints(CompetitionSpec)["source"]))
    assert all(source.name == kind for kind, source in sources.items())
    assert [kind for kind, source in sources.items() if source.remote] == ["kaggle"]


def test_the_spec_names_the_source_and_a_folder_comes_first(tmp_path):
    raw = tmp_path / "raw"
    assert pick_source(load_competition("demo"), raw, sources=data_sources()) is EMBEDDED
    assert pick_source(load_competition("shapes-segmentation"), raw, sources=data_sources()) is GENERATED_SOURCE
    assert pick_source(load_competition("cifar10"), raw, sources=data_sources()) is KAGGLE_SOURCE
    assert pick_source(load_competition("cifar10"), raw, tmp_path, sources=data_sources()) == FolderSource(tmp_path)


def test_a_folder_copy_stands_in_for_the_download_until_forced(tmp_path):
    from tests_support import DEMO_DIR

    spec, raw = load_competition("cifar10"), tmp_path / "raw" / "cifar10"
    fetch(spec, raw, DEMO_DIR)
    assert isinstance(pick_source(spec, raw), KeptFiles)  # no Kaggle source needed: nothing is downloaded
    assert isinstance(pick_source(spec, raw, sources=data_sources()), KeptFiles)
    assert pick_source(spec, raw, force=True, sources=data_sources()) is KAGGLE_SOURCE


def test_a_competition_no_source_was_handed_down_for_names_the_fix(tmp_path):
    with pytest.raises(PodiumError, match="cannot fetch") as err:
        fetch(load_competition("cifar10"), tmp_path / "raw" / "cifar10")
    assert "SRC=" in err.value.fix and "make data COMP=cifar10" in err.value.fix
    assert not list((tmp_path / "raw" / "cifar10").iterdir())


def test_the_generated_source_writes_once(tmp_path):
    spec, raw = load_competition("shapes-regression"), tmp_path / "raw"
    raw.mkdir()
    GENERATED_SOURCE.fetch(spec, raw)
    written = {p.name: p.stat().st_mtime_ns for p in raw.iterdir() if p.is_file()}
    assert set(spec.archives) <= set(written)
    GENERATED_SOURCE.fetch(spec, raw)
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir() if p.is_file()} == written
