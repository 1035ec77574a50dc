"""A YAML syntax error in any file podium reads (experiment config, competition spec, kernel spec, search
space) or in a key=value override: one PodiumError naming the file, the line and the column, never a
parser traceback. One reader (podium.io.read_yaml_mapping / parse_yaml) serves them all."""

import pytest

from podium.cli.main import main
from podium.data.competitions import load_competition
from podium.config import load_config
from podium.errors import PodiumError
from podium.kaggle.kernels import load_kernel_spec
from podium.search.study import load_space

BROKEN = "name: broken\nlr: [0.001, 0.003\nepochs: 3\n"  # the list is never closed
TAB = "slug: demo\nlayout:\tfolder\n  train_dir: train\n"  # a tab, then bad indentation

READERS = {
    "config": (lambda path: load_config(str(path), []), "Config file"),
    "competition spec": (lambda path: load_competition(str(path)), "Competition spec"),
    "kernel spec": (lambda path: load_kernel_spec(path), "Kernel spec"),
    "search space": (lambda path: load_space(path), "Search space"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("text", [BROKEN, TAB], ids=["unclosed-list", "bad-indent"])
def test_a_syntax_error_names_file_line_and_column(tmp_path, reader, text):
    load, kind = READERS[reader]
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(PodiumError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{kind} {path}, line ") and ", column " in message
    assert "not valid YAML" in message and "Fix: correct line" in message


def test_the_line_and_column_are_the_parsers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\nepochs: 3\naugment: [flip, crop\ntta: [identity]\n")
    with pytest.raises(PodiumError) as caught:
        load_config(str(path), [])
    assert "line 4, column 4" in str(caught.value)  # where PyYAML notices the missing ']'
    assert "Received: line 4: 'tta: [identity]'" in str(caught.value)


def test_a_broken_override_names_the_override(tmp_path):
    with pytest.raises(PodiumError, match=r"Override 'lr=\[0.1', line 1, column 5: not valid YAML"):
        load_config(None, ["lr=[0.1"])


def test_a_binary_file_given_as_config_is_named_not_decoded(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(PodiumError, match="is not text"):
        load_config(str(path), [])


def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(BROKEN)
    assert main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Config file {path}, line 3") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
