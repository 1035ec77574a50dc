"""A hand-edited or damaged submissions/log.csv stops `make submit` with an error naming the file, before
anything is sent; podium never rewrites the log dropping a row it could not read."""

import pytest

from podium.errors import PodiumError
from podium.kaggle.submit import LOG_COLUMNS, SubmissionLog

GOOD = ",".join(LOG_COLUMNS) + "\n" + ",".join(["2026-01-01T00:00:00", "demo", "a.csv", "m", "0.9", "scored"]
                                                 + [""] * (len(LOG_COLUMNS) - 6)) + "\n"


@pytest.mark.parametrize("content, match", [
    (GOOD.encode() + b"\xff\xfe broken\n", "not UTF-8"),
    (GOOD.encode() + b"x,y\n", "Row 3 .* cells"),  # too few cells
    (GOOD.encode() + b",".join([b"z"] * (len(LOG_COLUMNS) + 3)) + b"\n", "Row 3 .* cells"),  # too many
    (b"name,score\nfoo,1\n", "another header"),
    (GOOD.encode() + b'"unclosed,quote\n', "cells|not a readable CSV"),
])
def test_a_damaged_log_is_named_and_nothing_is_rewritten(tmp_path, content, match):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    log = SubmissionLog(path)
    with pytest.raises(PodiumError, match=match) as caught:
        log.rows()
    assert str(path) in str(caught.value)
    with pytest.raises(PodiumError):
        log.append({"file": "b.csv", "status": "sending"})
    assert path.read_bytes() == content  # the damaged log is left as it was


def test_a_good_log_and_an_older_one_with_fewer_columns_still_read(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert SubmissionLog(path).rows()[0]["status"] == "scored"
    older = tmp_path / "older.csv"
    older.write_text("time,competition,file,message,cv,status\n2026,demo,a.csv,m,0.9,scored\n", encoding="utf-8")
    rows = SubmissionLog(older).rows()
    assert rows[0]["file"] == "a.csv" and rows[0]["ref"] == ""
