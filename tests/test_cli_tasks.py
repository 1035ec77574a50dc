"""The tasks verbs through the real `podium` parser."""


import numpy as np
import pandas as pd
from PIL import Image

from podium.data import rle


def _parser():
    from podium.cli.main import _parser as podium_parser  # the real CLI, verbs registered as users get them

    return podium_parser()


def test_synth_writes_images_and_airbus_rows_that_decode_to_the_masks(tmp_path, capsys):
    args = _parser().parse_args(["synth", "--n", "6", "--size", "32", "--object-probability", "0.5",
                                 "--seed", "3", "--out", str(tmp_path)])
    args.handler(args)
    rows = pd.read_csv(tmp_path / "train_ship_segmentations.csv")
    assert sorted(rows["ImageId"].unique()) == sorted(p.name for p in (tmp_path / "train").iterdir())
    from podium.experiments.synthetic import make_shapes

    shapes = make_shapes(6, 32, 3, 0.5)
    for i, image_id in enumerate(sorted(rows["ImageId"].unique())):
        mask = rle.image_mask(rows.loc[rows.ImageId == image_id, "EncodedPixels"], (32, 32))
        assert (mask == shapes.masks[i, ..., 0]).all()
        assert (np.asarray(Image.open(tmp_path / "train" / image_id)) == shapes.images[i]).all()
    assert "synth: 6 images" in capsys.readouterr().out


def test_prune_verb_repeats_over_seeds_and_prints_every_arm_with_a_seed_table(tmp_path, capsys):
    args = _parser().parse_args(["prune", "--n", "40", "--n-val", "10", "--n-test", "20", "--out", str(tmp_path / "p"),
                                 "--seeds", "1,2",
                                 "image_size=32", "epochs=2", "val_split=0.2", "verbose=0", "augment=[]",
                                 f"runs_dir={tmp_path}", "prune_core=6", "prune_add=4", "prune_max_epochs=3",
                                 "prune_threshold=0.8"])
    args.handler(args)
    out = capsys.readouterr().out
    assert "task=classification, 40 samples" in out
    assert "seeds [1, 2]" in out and "of 40 samples" in out
    assert out.count("pruning (classification, seed ") == 2  # one report per seed
    assert (tmp_path / "p" / "seed-1" / "report.json").is_file() and (tmp_path / "p" / "seed-2" / "report.json").is_file()
    table = (tmp_path / "p" / "summary.md").read_text()
    assert "2 seeds (1, 2)" in table and table in out
    for arm in ("the selection's own model", "all N", "kept, same epochs", "kept, same steps as all N",
                "random of kept size, same steps"):
        assert f"| {arm} | " in table  # a mean ± sd row per arm
