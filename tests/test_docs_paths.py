"""Every repository path the docs name exists, so a reader following one never lands on nothing (a
MEASURED.md that never was). A path of a file the reader writes is a placeholder: `my-...` or `x.yaml`."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# src/..., configs/..., docs/..., tests/..., benchmarks/...; `*` globs; `<name>` placeholders
PATH = re.compile(r"(?<![\w/.-])((?:src|configs|docs|tests|benchmarks)/[\w./*<>-]*[\w/*>])")


def _is_placeholder(ref: str) -> bool:
    name = ref.rstrip("/").rsplit("/", 1)[-1]
    return "<" in ref or name.startswith("my-") or name.split(".")[0] == "x"


def _references(doc: Path) -> list[str]:
    return [ref for ref in PATH.findall(doc.read_text(encoding="utf-8")) if not _is_placeholder(ref)]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_path_a_doc_names_exists(doc):
    missing = [ref for ref in _references(doc)
               if not (any(ROOT.glob(ref)) if "*" in ref else (ROOT / ref).exists())]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_the_check_sees_the_references():
    refs = {ref for doc in DOCS for ref in _references(doc)}
    assert {"configs/demo.yaml", "src/podium/config.py", "docs/speed.md"} <= refs
    assert "configs/shapes-*.yaml" in refs  # a glob: it must match a file
