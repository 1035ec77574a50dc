"""make data through the real kaggle client against the local stand-in: download, extract, faults."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

import tests_support
from kaggle_standin import RULES_MESSAGE, kaggle_home, session, standin  # noqa: F401 (fixtures)
from podium.errors import PodiumError

SPEC = """slug: tiny-comp
layout: folder
archives: [train.zip, test.zip]
train_dir: train
test_dir: test
sample_submission: sample_submission.csv
rules_url: https://www.kaggle.com/competitions/tiny-comp/rules
"""


def make_data(competition: str, data_dir: str, force: bool = False):
    """What `make data COMP=<spec>` runs: prepare_data with the sources the CLI hands down (Kaggle's among them)."""
    from podium.cli.data import data_sources

    return tests_support.make_data(competition, data_dir, force=force, sources=data_sources())


def _jpeg(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "JPEG")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    """Byte-for-byte the same on every call: a fixed date in the headers, not the clock's."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def competition_files() -> dict[str, bytes]:
    train = {f"train/{label}/{i}.jpg": _jpeg(color) for label, color in (("cat", "red"), ("dog", "blue"))
             for i in range(3)}
    test = {f"test/{i}.jpg": _jpeg("green") for i in range(2)}
    return {"train.zip": _zip(train), "test.zip": _zip(test), "sample_submission.csv": b"id,label\n0,cat\n1,cat\n"}


@pytest.fixture
def spec_path(tmp_path) -> str:
    path = tmp_path / "tiny-comp.yaml"
    path.write_text(SPEC)
    return str(path)


def test_make_data_downloads_extracts_and_indexes_then_sends_nothing(standin, kaggle_home, spec_path, tmp_path):
    standin.add_competition("tiny-comp", competition_files())
    summary = make_data(spec_path, str(tmp_path / "data"))
    assert (summary.n_train, summary.n_test, summary.n_classes) == (6, 2, 2)
    raw = tmp_path / "data" / "raw" / "tiny-comp"
    assert (raw / "train.zip").read_bytes() == competition_files()["train.zip"]  # kept as received
    assert standin.log == [
        "POST /api/v1/competitions.CompetitionApiService/ListDataFiles -> 200",
        "POST /api/v1/competitions.CompetitionApiService/DownloadDataFile -> 302",
        "GET /files/tiny-comp/sample_submission.csv -> 200",
        "POST /api/v1/competitions.CompetitionApiService/DownloadDataFile -> 302",
        "GET /files/tiny-comp/test.zip -> 200",
        "POST /api/v1/competitions.CompetitionApiService/DownloadDataFile -> 302",
        "GET /files/tiny-comp/train.zip -> 200",
    ]
    standin.clear_log()
    again = make_data(spec_path, str(tmp_path / "data"))
    assert standin.log == [] and not again.extracted
    make_data(spec_path, str(tmp_path / "data"), force=True)
    assert len(standin.requests_named("GET /files/")) == 3


def test_a_missing_file_is_fetched_alone(standin, kaggle_home, spec_path, tmp_path):
    standin.add_competition("tiny-comp", competition_files())
    make_data(spec_path, str(tmp_path / "data"))
    (tmp_path / "data" / "raw" / "tiny-comp" / "test.zip").unlink()
    standin.clear_log()
    make_data(spec_path, str(tmp_path / "data"))
    assert standin.requests_named("GET /files/") == ["GET /files/tiny-comp/test.zip -> 200"]


def test_rules_not_accepted_names_the_rules_page(standin, kaggle_home, spec_path, tmp_path):
    standin.add_competition("tiny-comp", competition_files(), rules_accepted=False)
    with pytest.raises(PodiumError) as err:
        make_data(spec_path, str(tmp_path / "data"))
    assert "https://www.kaggle.com/competitions/tiny-comp/rules" in str(err.value)
    assert "rules" in err.value.what and RULES_MESSAGE in str(err.value)
    assert not list((tmp_path / "data" / "raw" / "tiny-comp").iterdir())


def test_rules_url_defaults_to_the_competition_page(standin, kaggle_home, tmp_path):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    standin.add_competition("cifar10", {}, rules_accepted=False)
    with pytest.raises(PodiumError, match="https://www.kaggle.com/competitions/cifar10/rules"):
        download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10")


def test_unknown_competition_is_a_clear_404(standin, kaggle_home, tmp_path):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    with pytest.raises(PodiumError, match="HTTP 404") as err:
        download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10")
    assert "Competition not found" in str(err.value)


def test_wrong_key_is_a_clear_401(standin, kaggle_home, tmp_path, monkeypatch):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    standin.add_competition("cifar10", competition_files())
    with pytest.raises(PodiumError, match="HTTP 401") as err:
        download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10")
    assert "kaggle.com/settings" in err.value.fix and "not-the-key" not in str(err.value)


def test_429_waits_retry_after_then_succeeds(standin, session, tmp_path):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    standin.add_competition("cifar10", competition_files())
    standin.fail("ListDataFiles", status=429, retry_after="7")
    download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10", session=session)
    assert session.retry.sleep == [7.0]
    assert standin.requests_named("ListDataFiles") == [
        "POST /api/v1/competitions.CompetitionApiService/ListDataFiles -> 429",
        "POST /api/v1/competitions.CompetitionApiService/ListDataFiles -> 200"]


def test_500_and_reset_back_off_then_succeed(standin, session, tmp_path):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    standin.add_competition("cifar10", competition_files())
    standin.fail("ListDataFiles", status=500)
    standin.fail("DownloadDataFile", reset="before")
    files = download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10", session=session)
    assert sorted(p.name for p in files) == ["sample_submission.csv", "test.zip", "train.zip"]
    assert session.retry.sleep == [2.0, 2.0]  # one backoff each, from the first step of the policy


def test_persistent_500_ends_in_a_clear_message(standin, session, tmp_path):
    from podium.data.competitions import load_competition
    from podium.kaggle.client import download_competition

    standin.add_competition("cifar10", competition_files())
    standin.fail("ListDataFiles", status=500, times=99)
    with pytest.raises(PodiumError, match="HTTP 500"):
        download_competition(load_competition("cifar10"), tmp_path / "raw" / "cifar10", session=session)
    assert len(standin.requests_named("ListDataFiles")) == session.retry.attempts
    assert session.retry.sleep == [2.0, 4.0, 8.0, 16.0]


def test_zip_slip_archive_is_rejected_and_nothing_lands_outside(standin, kaggle_home, spec_path, tmp_path):
    files = competition_files()
    files["train.zip"] = _zip({"train/cat/0.jpg": _jpeg("red"), "../../escaped.txt": b"pwned"})
    standin.add_competition("tiny-comp", files)
    with pytest.raises(PodiumError, match="'..' path component"):
        make_data(spec_path, str(tmp_path / "data"))
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path / "data" / "tiny-comp").exists()
    assert (tmp_path / "data" / "raw" / "tiny-comp" / "train.zip").is_file()  # kept for inspection
