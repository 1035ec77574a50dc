"""Issue 21, class 4: kernel spec values of the wrong type are a clear error naming the key, what it takes and
what it got, at the one place kernel specs are read (load_kernel_spec), never a quoted "false" printed as
"internet on" or a string split into characters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.errors import PodiumError
from podium.tasks import get_task

WRONG = {
    "quoted-false": ("is_private: \"false\"\n", "is_private", "true or false", "'false' (str)"),
    "quoted-true-internet": ("enable_internet: 'true'\n", "enable_internet", "true or false", "'true' (str)"),
    "zero-for-bool": ("is_private: 0\n", "is_private", "true or false", "0 (int)"),
    "string-for-list": ("dataset_sources: alice/data\n", "dataset_sources", "a list", "'alice/data' (str)"),
    "mapping-for-list": ("dataset_sources: {alice: data}\n", "dataset_sources", "a list", "(dict)"),
    "item-not-owner-slug": ("dataset_sources: [alice]\n", "dataset_sources", "owner/slug", "'alice'"),
    "number-item": ("dataset_sources: [12]\n", "dataset_sources", "owner/slug", "12"),
    "negative-timeout": ("timeout_seconds: -5\n", "timeout_seconds", ">= 0", "-5 (int)"),
    "quoted-timeout": ("timeout_seconds: \"3600\"\n", "timeout_seconds", "whole number", "'3600' (str)"),
    "fraction-timeout": ("timeout_seconds: 3600.5\n", "timeout_seconds", "whole number", "3600.5 (float)"),
    "bool-timeout": ("timeout_seconds: true\n", "timeout_seconds", "whole number", "True (bool)"),
    "number-slug": ("slug: 12345\n", "slug", "text", "12345 (int)"),
    "list-accelerator": ("accelerator: [NvidiaTeslaT4]\n", "accelerator", "text", "['NvidiaTeslaT4'] (list)"),
    "empty-owner": ("owner:\n", "owner", "text", "None (NoneType)"),
    "bool-mode": ("mode: true\n", "mode", "text", "True (bool)"),
}


@pytest.mark.parametrize("text, key, expected, received", WRONG.values(), ids=WRONG)
def test_a_value_of_the_wrong_type_names_the_key_expected_and_received(tmp_path, text, key, expected, received):
    from podium.kaggle.kernels import load_kernel_spec

    path = tmp_path / "kernel.yaml"
    path.write_text(text)
    with pytest.raises(PodiumError) as err:
        load_kernel_spec(path)
    assert f"'{key}'" in err.value.what and str(path) in err.value.what
    assert expected in err.value.expected and received in err.value.received
    assert err.value.fix


def test_a_quoted_boolean_says_to_unquote_it(tmp_path):
    from podium.kaggle.kernels import load_kernel_spec

    (tmp_path / "k.yaml").write_text('enable_internet: "no"\n')
    with pytest.raises(PodiumError) as err:
        load_kernel_spec(tmp_path / "k.yaml")
    assert "enable_internet: no without quotes" in err.value.fix


def test_the_same_check_holds_for_values_given_in_code():
    from podium.kaggle.kernels import load_kernel_spec

    with pytest.raises(PodiumError, match="'is_private' in the kernel settings"):
        load_kernel_spec(None, {"is_private": "False"})


def test_values_of_the_right_type_load_and_render_as_written(tmp_path):
    from podium.config import load_config
    from podium.kaggle.kernels import load_kernel_spec, render_kernel

    path = tmp_path / "kernel.yaml"
    path.write_text("is_private: false\nenable_internet: no\ndataset_sources:\n  - alice/extra-data\n"
                    "timeout_seconds: 0\naccelerator: none\n")
    spec = load_kernel_spec(path)
    assert (spec.is_private, spec.enable_internet, spec.dataset_sources, spec.timeout_seconds) == \
        (False, False, ("alice/extra-data",), 0)
    cfg = load_config(None, {"name": "demo", "competition": "cifar10", "runs_dir": str(tmp_path / "runs")})
    rendered = render_kernel(cfg, get_task(cfg.task), spec, owner="tester", out_root=tmp_path / "kernels")
    meta = json.loads((rendered.folder / "kernel-metadata.json").read_text())
    assert meta["is_private"] is False and meta["enable_internet"] is False
    assert meta["dataset_sources"] == ["alice/extra-data"]


def test_the_cli_prints_the_error_not_a_traceback(tmp_path, capsys):
    from podium.cli.main import main

    (tmp_path / "kernel.yaml").write_text('is_private: "false"\n')
    config = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    code = main(["kernel", "--config", str(config), "--kernel", str(tmp_path / "kernel.yaml"), "--no-upload"])
    err = capsys.readouterr().err
    assert code == 2 and "'is_private'" in err and "Traceback" not in err
