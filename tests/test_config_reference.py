"""docs/config-reference.md is generated from ExperimentConfig's declarations and is current (issue 21, first
contact: no reference of the config keys and their valid values)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from podium.cli.main import main
from podium.config import PLUMBING, PREDICTS, ExperimentConfig, key, num, role_of
from podium.config_reference import COMMAND, PAGE, config_reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_reference_is_current():
    committed = (ROOT / PAGE).read_text(encoding="utf-8") if (ROOT / PAGE).is_file() else ""
    assert committed == config_reference(), (
        f"{PAGE} is not what ExperimentConfig declares (a key, default, range, role or comment changed): "
        f"regenerate it with `{COMMAND}` (PYTHONPATH=src) and commit it")


def test_every_key_is_one_row_with_its_role_and_range():
    page = config_reference()
    rows = {line.split("|")[1].strip().strip("`"): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in page.splitlines() if line.startswith("| `")}
    fields = dataclasses.fields(ExperimentConfig)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        assert rows[f.name][3] == role_of(f), f.name
        bounds = f.metadata.get("range")
        if bounds is not None:
            assert bounds.text(f.name) in rows[f.name][2], f.name
    assert rows["lr"][:4] == ["float", "0.001", "0 < lr", "trains"]
    assert rows["optimizer"][2] == "one of: adam, adamw, sgd"
    assert "vflip" in rows["augment"][2] and "rot270" in rows["tta"][2] and "resnet9" in rows["backbone"][2]
    assert rows["jit_compile"][:3] == ["bool or null", "null", "true, false, null"]
    assert "fixed apart from `seed`" in rows["split_seed"][4]  # the comment on the field's line
    assert "Polyak averaging" in rows["ema"][4]  # the comment lines above the field
    assert "task=segmentation: val_loss, loss, val_dice" in rows["monitor"][2]


@dataclass
class Toy:
    """A config of three keys in two sections, to check what the generator reads."""

    # ---- first part ----------------------------------------------------
    # the opening lines describe the section
    size: int = num(8, ge=1, le=64)  # pixels per side
    # a block above a key describes it
    mode: Literal["fast", "slow"] = key("fast", PREDICTS)

    # ---- second part ---------------------------------------------------
    folder: str = key("out", PLUMBING)


def test_a_declared_config_becomes_the_expected_page():
    page = config_reference(Toy)
    assert "## first part\n\nthe opening lines describe the section\n" in page
    assert "| `size` | int | 8 | 1 <= size <= 64 | trains | pixels per side |" in page
    assert "| `mode` | str | fast | one of: fast, slow | predicts | a block above a key describes it |" in page
    assert "## second part\n\n| key |" in page and "| `folder` | str | out |  | plumbing |  |" in page


def test_the_command_writes_the_page(tmp_path, capsys):
    out = tmp_path / "reference.md"
    assert main(["config", "--reference", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == config_reference()
    assert f"wrote {out}" in capsys.readouterr().out
