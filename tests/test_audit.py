"""The leak audit: a split with copies across folds fails loudly with a gallery; a grouped split passes."""


import pandas as pd
import pytest
from planted import planted_demo

from podium.data.audit import LeakError, audit_split, read_split
from podium.data.duplicates import run_dups
from podium.data.folds import make_kfold
from podium.data.index import load_index
from podium.errors import PodiumError
from podium.io import write_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def planted(demo_root, tmp_path_factory):
    return planted_demo(demo_root, tmp_path_factory.mktemp("planted"), copies=12, test_copies=0)


def test_a_split_made_without_duplicate_groups_fails_with_a_gallery(planted, tmp_path):
    root, pairs, _ = planted
    index = load_index(root / "index.parquet")  # groups = content hashes only: copies are not grouped
    split_path = write_csv(tmp_path / "folds-leaky.csv", make_kfold(index, 5, seed=0))
    with pytest.raises(LeakError, match="LEAK") as caught:
        audit_split(index, read_split(split_path), root, split_path, threshold=8, out_dir=tmp_path / "audit")
    leak = caught.value
    assert "make folds FORCE=1" in str(leak)
    folds = pd.read_csv(split_path, dtype={"id": str}).set_index("id")["fold"]
    separated = {tuple(sorted(p)) for p in pairs if folds[p[0]] != folds[p[1]]}
    assert {tuple(sorted(p)) for p in zip(leak.leaks["id_a"], leak.leaks["id_b"])} == separated
    assert leak.gallery.read_bytes()[:8] == PNG_SIGNATURE and leak.gallery.stat().st_size > 5000
    assert len(pd.read_csv(leak.table)) == len(separated)


def test_the_same_data_passes_once_dups_has_grouped_it(planted, tmp_path):
    root, pairs, _ = planted
    import shutil

    copy = tmp_path / "demo"
    shutil.copytree(root, copy)
    run_dups(copy)
    index = load_index(copy / "index.parquet")
    split_path = write_csv(tmp_path / "folds-grouped.csv", make_kfold(index, 5, seed=0))
    report = audit_split(index, read_split(split_path), copy, split_path, threshold=8)
    assert report.images == 2000 + len(pairs) and report.folds == 5
    assert report.duplicate_pairs_within_folds == len(pairs)


def test_one_moved_image_is_enough_to_fail(planted, tmp_path):
    root, pairs, _ = planted
    index = load_index(root / "index.parquet")
    split = make_kfold(index, 5, seed=0).set_index("id")
    for source, copy in pairs:  # a clean split by hand ...
        split.loc[copy, "fold"] = split.loc[source, "fold"]
    source, copy = pairs[0]
    split.loc[copy, "fold"] = (split.loc[source, "fold"] + 1) % 5  # ... but for one copy
    path = write_csv(tmp_path / "hand.csv", split.reset_index())
    with pytest.raises(LeakError) as caught:
        audit_split(index, read_split(path), root, path, threshold=8, out_dir=tmp_path)
    assert len(caught.value.leaks) == 1 and set(caught.value.leaks.iloc[0][["id_a", "id_b"]]) == {source, copy}


def test_a_split_naming_unknown_images_is_refused(planted, tmp_path):
    root, _, _ = planted
    path = write_csv(tmp_path / "odd.csv", pd.DataFrame({"id": ["nope/1"], "fold": [0]}))
    with pytest.raises(PodiumError, match="does not have"):
        audit_split(load_index(root / "index.parquet"), read_split(path), root, path, threshold=8)


def _cli(argv):
    """The real `podium` entry point, as `make audit` / `make dups` call it."""
    from podium.cli.main import main

    return main(argv)


def test_cli_audit_exits_2_on_a_leak_and_dups_then_folds_fixes_it(planted, tmp_path, capsys):
    import shutil

    root, _, _ = planted
    data_dir = tmp_path / "data"
    shutil.copytree(root, data_dir / "demo")
    index = load_index(data_dir / "demo" / "index.parquet")
    write_csv(data_dir / "demo" / "splits" / "folds-k5-s42.csv", make_kfold(index, 5, seed=42))
    common = [f"data_dir={data_dir}", "n_folds=5", "split_seed=42"]
    assert _cli(["audit", *common]) == 2
    err = capsys.readouterr().err
    assert "LEAK" in err and "leaks-folds-k5-s42.png" in err and "Traceback" not in err
    assert _cli(["dups", *common]) == 0
    out = capsys.readouterr().out
    assert "CHANGED" in out and "make folds FORCE=1" in out and "folds-k5-s42.csv" in out
    index = load_index(data_dir / "demo" / "index.parquet")
    write_csv(data_dir / "demo" / "splits" / "folds-k5-s42.csv", make_kfold(index, 5, seed=42))
    assert _cli(["audit", *common]) == 0
    assert "clean" in capsys.readouterr().out
