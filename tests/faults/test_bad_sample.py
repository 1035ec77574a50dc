"""A sample submission podium cannot use (binary, another encoding, ragged rows, an unclosed quote, empty,
header only, repeated or blank ids): one PodiumError each, never a pandas traceback, and the fix it gives
works: `make data FORCE=1` unpacks the archives again, where plain `make data` would reuse the damage."""

import shutil

import pytest

from podium.errors import PodiumError
from podium.submission.validate import read_sample_submission
from tests_support import make_data

CASES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00" * 20, "not a readable CSV"),
    "latin-1": ("id,label\ncaf\xe9,a\n".encode("latin-1"), "not a readable CSV"),
    "ragged": (b"id,label\n1,a\n2,b,c,d\n3,c\n", "Expected 2 fields in line 3"),
    "unclosed-quote": (b'id,label\n"1,a\n2,b\n', "not a readable CSV"),
    "empty": (b"", "is empty"),
    "header-only": (b"id,label\n", "has a header but no rows"),
    "repeated-ids": (b"id,label\n1,a\n1,b\n", "duplicate id"),
    "blank-id": (b"id,label\n1,a\n ,b\n", "empty id"),
    "other-columns": (b"image,class\n1,a\n", r"has no column \['id', 'label'\]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_sample_is_one_clear_error(tmp_path, case):
    data, message = CASES[case]
    path = tmp_path / "sample_submission.csv"
    path.write_bytes(data)
    with pytest.raises(PodiumError, match=message) as caught:
        read_sample_submission(path, "id", "label")
    assert str(path) in str(caught.value) and "Fix:" in str(caught.value)


def test_the_fix_for_a_damaged_sample_is_force_and_it_works(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data, symlinks=True)
    sample = data / "demo" / "sample_submission.csv"
    good = sample.read_bytes()
    sample.write_bytes(good[: len(good) // 3] + b'"unclosed\n')  # cut short and broken
    with pytest.raises(PodiumError) as caught:
        read_sample_submission(sample, "id", "label")
    assert "`make data FORCE=1`" in str(caught.value)
    make_data("demo", str(data))  # plain `make data` reuses the unpacked files: still broken
    assert sample.read_bytes() != good
    make_data("demo", str(data), force=True)  # the fix the message gives
    assert len(read_sample_submission(sample, "id", "label")) == 500
