"""Warnings about a config that does not fit the data (podium.data.advice), on real images: generated 8x8
JPEG "digits", the demo's CIFAR JPEGs, and the refusal when a spec says flips change the meaning."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from podium.cli.main import main
from podium.data.competitions import load_competition
from podium.config import load_config
from podium.data.advice import config_warnings, looks_like_symbols, refuse_flips
from podium.data.index import load_index
from podium.errors import PodiumError
from tests_support import make_data

ROOT = Path(__file__).resolve().parents[1]


def _write_digits(source: Path, per_class: int = 6, size: int = 8) -> None:
    """Ten classes named 0..9 of size x size grayscale JPEGs (a stroke per class), a test folder, a sample."""
    rng = np.random.default_rng(1)
    for digit in range(10):
        folder = source / "train" / str(digit)
        folder.mkdir(parents=True)
        for k in range(per_class):
            pixels = rng.integers(0, 60, (size, size), dtype=np.uint8)
            pixels[:, digit % size] = 255
            Image.fromarray(pixels, mode="L").save(folder / f"{digit}-{k}.jpg")
    (source / "test").mkdir()
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), mode="L").save(source / "test" / f"{k}.jpg")
    pd.DataFrame({"id": range(4), "label": "0"}).to_csv(source / "sample_submission.csv", index=False)


def _spec(path: Path, slug: str, **extra) -> Path:
    lines = [f"slug: {slug}", "layout: folder", "archives: []"] + [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(spec path, data_dir) of 8x8 digit-like JPEGs after `make data`."""
    base = tmp_path_factory.mktemp("digits")
    _write_digits(base / "src")
    spec = _spec(base / "digits.yaml", "digits8")
    make_data(str(spec), str(base / "data"), str(base / "src"))
    return spec, base / "data"


def _cfg(spec: Path, data_dir: Path, **overrides):
    return load_config(None, {"competition": str(spec), "data_dir": str(data_dir), **overrides})


def test_symbol_like_class_names():
    assert looks_like_symbols([str(d) for d in range(10)]) and looks_like_symbols(list("abcXYZ"))
    assert not looks_like_symbols(["cat", "dog"]) and not looks_like_symbols(["7"])
    assert not looks_like_symbols(["1", "-"])


def test_8px_digits_warn_about_flips_upscaling_and_a_tiny_holdout(digits):
    spec_path, data_dir = digits
    cfg = _cfg(spec_path, data_dir, image_size=32, val_split=0.2, folds=[0])  # defaults: augment flip, tta hflip
    spec = load_competition(str(spec_path))
    warnings = config_warnings(cfg, spec, load_index(data_dir / "digits8" / "index.parquet"))
    text = "\n".join(warnings)
    assert len(warnings) == 3, text
    assert "single characters (0, 1, 2" in text and "augment flip, tta hflip" in text
    assert "flip_invariant: false" in text
    assert "8x8 px (median), image_size 32 upscales them 4.0x" in text and "Fix: image_size=8 (the native size)" in text
    assert "rests on 12 images (val_split=0.2)" in text and "29 points" in text


def test_no_flip_warning_once_the_config_has_no_flips_or_the_spec_says_flips_are_fine(digits, tmp_path):
    spec_path, data_dir = digits
    index = load_index(data_dir / "digits8" / "index.parquet")
    clean = _cfg(spec_path, data_dir, image_size=8, augment=["crop"], tta=["identity"])
    assert not any("single characters" in w for w in config_warnings(clean, load_competition(str(spec_path)), index))
    fine = _spec(tmp_path / "fine.yaml", "digits8", flip_invariant="true")
    warnings = config_warnings(_cfg(fine, data_dir, image_size=8), load_competition(str(fine)), index)
    assert not any("single characters" in w for w in warnings) and not any("upscales" in w for w in warnings)


def test_flip_invariant_false_refuses_flips_at_config_load_with_the_fix(digits, tmp_path, capsys):
    _, data_dir = digits
    spec_path = _spec(tmp_path / "strict.yaml", "digits8", flip_invariant="false")
    with pytest.raises(PodiumError) as raised:  # every load_config refuses: stages, search, kernels alike
        _cfg(spec_path, data_dir, augment=["flip", "crop"], tta=["identity", "hflip"])
    message = str(raised.value)
    assert "flip_invariant: false" in message and "augment flip, tta hflip" in message
    assert "augment=[crop] tta=[identity]" in message
    refuse_flips(_cfg(spec_path, data_dir, augment=["crop"], tta=["identity", "shift_left"]),
                 load_competition(str(spec_path)))  # no flips: accepted
    config_yaml = tmp_path / "exp.yaml"
    config_yaml.write_text(f"competition: {spec_path}\ndata_dir: {data_dir}\naugment: [flip]\ntta: [identity]\n")
    assert main(["folds", "--config", str(config_yaml)]) == 2
    assert "Fix: set augment=[] tta=[identity]" in capsys.readouterr().err
    assert not (data_dir / "digits8" / "splits" / "folds-k5-s42.csv").exists()  # refused before any split


def test_flip_invariant_false_refuses_every_vertical_flip_and_quarter_turn(digits, tmp_path):
    """A turned '6' is a '9': flip_invariant: false refuses vflip/rot90 augments and every turned TTA view, and
    the refusal lists cover every orientation podium has (a new one cannot slip past)."""
    from podium.data.advice import FLIP_AUGMENTS, FLIP_VIEWS
    from podium.training import augment, orientation, tta

    assert set(orientation.ORIENTATIONS) - {"identity"} <= set(FLIP_VIEWS) <= set(tta.view_names())
    assert {"flip", "vflip", "rot90"} == set(FLIP_AUGMENTS) and set(FLIP_AUGMENTS) <= set(augment.batch_recipe_names())
    _, data_dir = digits
    spec_path = _spec(tmp_path / "strict.yaml", "digits8", flip_invariant="false")
    for augment_names, views in ((["vflip", "crop"], ["identity"]), (["rot90"], ["identity"]),
                                 (["crop"], ["identity", "rot180"]), (["crop"], ["identity", "transpose"])):
        with pytest.raises(PodiumError, match="mirrors or turns images") as raised:
            _cfg(spec_path, data_dir, augment=augment_names, tta=views)
        kept = ",".join(name for name in augment_names if name == "crop")
        assert f"augment=[{kept}] tta=[identity]" in str(raised.value)


def test_folds_prints_the_advice_and_still_writes_the_split(digits, tmp_path, capsys):
    spec_path, data_dir = digits
    config_yaml = tmp_path / "exp.yaml"
    config_yaml.write_text(f"competition: {spec_path}\ndata_dir: {data_dir}\nn_folds: 3\nfolds: [0]\n")
    assert main(["folds", "--config", str(config_yaml)]) == 0
    out = capsys.readouterr().out
    assert "advice: the classes are single characters" in out and "advice: train images are 8x8" in out
    assert "folds: " in out and (data_dir / "digits8" / "splits" / "folds-k3-s42.csv").is_file()


def test_the_demo_config_on_cifar_gets_no_warnings(demo_data):
    cfg = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data)})
    index = load_index(demo_data / "demo" / "index.parquet")
    spec = load_competition("demo")
    assert config_warnings(cfg, spec, index) == []
    small = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data), "val_split": 0.05, "folds": [0]})
    (warning,) = config_warnings(small, spec, index)
    assert "rests on 100 images (val_split=0.05)" in warning and "10 points" in warning


def test_pretrained_backbone_upscaling_cifar_is_a_measured_choice_not_an_error(demo_data):
    cfg = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data), "backbone": "resnet50",
                                                       "weights": "imagenet", "image_size": 0})
    warnings = config_warnings(cfg, load_competition("demo"), load_index(demo_data / "demo" / "index.parquet"))
    (warning,) = warnings
    assert "32x32 px (median), image_size 224 upscales them 7.0x" in warning and "pretrained weights" in warning
    assert "49x the compute" in warning and "over seeds" in warning


def test_imbalance_and_repeated_tta_views(demo_data):
    index = load_index(demo_data / "demo" / "index.parquet")
    train = index[index["split"] == "train"]
    rare = train[train["label"] == "cat"].head(15)  # cat keeps 15 images, the others their 200
    skewed = pd.concat([train[train["label"] != "cat"], rare, index[index["split"] == "test"]])
    cfg = load_config(ROOT / "configs" / "demo.yaml",
                      {"data_dir": str(demo_data), "tta": ["identity", "hflip", "hflip"]})
    text = "\n".join(config_warnings(cfg, load_competition("demo"), skewed))
    assert "'cat' 15 (13:1)" in text and "class_weight=balanced" in text
    assert "TTA view(s) hflip appear more than once" in text and "tta=[identity,hflip]" in text
    balanced = load_config(ROOT / "configs" / "demo.yaml", {"data_dir": str(demo_data), "class_weight": "balanced"})
    assert config_warnings(balanced, load_competition("demo"), skewed) == []
