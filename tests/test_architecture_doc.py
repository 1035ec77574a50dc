"""docs/architecture.md is drawn from the tree: every module has its row, every row a module, the layer table
is the one tests/test_architecture.py holds, and the flow diagram names every make target once."""

import re
from collections import Counter
from pathlib import Path

import podium
from test_architecture import LAYERS

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(podium.__file__).resolve().parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
ROWS = re.findall(r"^\| `([^`]+\.py)` \| ", DOC, re.M)


def _modules() -> set[str]:
    """Every module file, relative to src/podium; a folder's __init__ only where it holds code (blend/)."""
    found = set()
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if path.name != "__init__.py" or len(path.read_text(encoding="utf-8").splitlines()) > 40:
            found.add(relative)
    return found


def test_every_module_has_one_row_and_every_row_a_module():
    rows = Counter(ROWS)
    assert sorted(m for m in _modules() if m not in rows) == [], "modules without a row in docs/architecture.md"
    assert sorted(r for r in rows if r not in _modules() and not (SRC / r).is_file()) == [], "rows of no module"
    assert [r for r, n in rows.items() if n > 1] == [], "a module with two rows"


def test_the_layer_table_is_the_tests_one():
    table = re.findall(r"^\| (\w+) \| ((?:`[^`]+` ?)+) \| ", DOC, re.M)
    assert [(name, tuple(re.findall(r"`([^`]+)`", entries))) for name, entries in table] == LAYERS


def test_the_flow_diagram_names_every_make_target_once():
    targets = re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    diagram = DOC[DOC.index("```\n"):DOC.index("```", DOC.index("```\n") + 3)]
    named = Counter(re.findall(r"make ([a-z][a-z0-9-]*)", diagram))
    assert {t: named[t] for t in targets if named[t] != 1} == {}, "targets named other than once"
    assert sorted(set(named) - set(targets)) == [], "the diagram names targets the Makefile lacks"
