"""Every module under src/podium is named by some test file: imported (`import podium.x.y`, `from podium.x
import y`) or declared late (LazyModule("podium.x.y")), read from the tests' source (AST). A module exercised
only through another one is untested where it is read; a new module without a test fails here. The few
modules reached only through an entry point are listed below, each with that entry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from test_architecture import SRC, _imported, _lazy_target, _module_name

TESTS = Path(__file__).resolve().parent

# modules tested only through an entry point: module -> where its behaviour is tested
THROUGH_AN_ENTRY = {
    # the verbs of `podium`: each is run through podium.cli.main (test_cli.py, test_cli_tasks.py, ...)
    "podium.cli.experiments": "podium.cli.main",
    "podium.cli.kaggle": "podium.cli.main",
    "podium.cli.report": "podium.cli.main",
    "podium.cli.search": "podium.cli.main",
    # the kernel script and its job scripts: Kaggle runs them as files (kernel.py rendered as podium_kernel.py),
    # and test_kernel_scripts.py loads each by file path; test_kaggle_kernels.py renders the kernel
    "podium.kaggle.scripts.kernel": "tests/test_kernel_scripts.py (by file path)",
    "podium.kaggle.scripts.training_kernel": "tests/test_kernel_scripts.py (by file path)",
    "podium.kaggle.scripts.inference_kernel": "tests/test_kernel_scripts.py (by file path)",
}


# an import statement inside a string: code a test runs in a fresh interpreter (python -c)
IMPORT_IN_TEXT = re.compile(r"(?:^|;)[ \t]*(import[ \t]+podium[\w.]*(?:[ \t]+as[ \t]+\w+)?"
                            r"(?:[ \t]*,[ \t]*podium[\w.]*)*|"
                            r"from[ \t]+podium[\w.]*[ \t]+import[ \t]+[\w \t,]+)", re.MULTILINE)


def _has_behaviour(path: Path) -> bool:
    """Anything but a docstring, imports and __all__ (a package's __init__ that only re-exports has none)."""
    def inert(node: ast.stmt) -> bool:
        return isinstance(node, (ast.Expr, ast.Import, ast.ImportFrom)) or (
            isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__all__"])

    return not all(inert(node) for node in ast.parse(path.read_text(encoding="utf-8")).body)


def podium_modules() -> set[str]:
    """Every podium module with behaviour; podium's own __init__ runs on every import of podium."""
    return {_module_name(path) for path in SRC.rglob("*.py") if _has_behaviour(path)} - {"podium"}


def _statements(tree: ast.AST):
    """Import statements and LazyModule calls: in the code, and in strings of code run in a fresh process."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _lazy_target(node):
            yield node
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for found in IMPORT_IN_TEXT.finditer(node.value):
                yield ast.parse(found.group(1).strip()).body[0]


def named_by_tests(modules: set[str], files: list[Path]) -> set[str]:
    """The podium modules the test files import or declare with LazyModule (at any depth)."""
    named: set[str] = set()
    for path in files:
        for node in _statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            named.update(_imported(node, "tests." + path.stem, False, modules))
    return named


def test_every_module_is_named_by_a_test_file():
    modules = podium_modules()
    named = named_by_tests(modules, sorted(set(TESTS.glob("*.py")) - {Path(__file__).resolve()}))  # not these forms
    untested = sorted(modules - named - set(THROUGH_AN_ENTRY))
    assert not untested, f"modules no test file imports (add a test, or an entry with its reason): {untested}"


def test_the_allow_list_names_modules_no_test_imports_and_entries_that_are_tested():
    modules = podium_modules()
    assert set(THROUGH_AN_ENTRY) <= modules, sorted(set(THROUGH_AN_ENTRY) - modules)
    named = named_by_tests(modules, sorted(set(TESTS.glob("*.py")) - {Path(__file__).resolve()}))
    stale = sorted(set(THROUGH_AN_ENTRY) & named)
    assert not stale, f"tested directly now: remove them from THROUGH_AN_ENTRY: {stale}"
    for entry in set(THROUGH_AN_ENTRY.values()):
        if entry.startswith("tests/"):
            assert (TESTS.parent / entry.split(" ")[0]).is_file(), entry
        else:
            assert entry in named, entry


def test_the_check_sees_each_way_of_naming_a_module(tmp_path):
    modules = {"podium.data", "podium.data.pixels", "podium.data.rle", "podium.blend", "podium.blend.fit",
               "podium.spec.check"}
    forms = {"import podium.data.pixels as px\n": {"podium.data.pixels"},
             "from podium.data import rle\n": {"podium.data.rle"},
             "from podium.blend import combine\n": {"podium.blend"},
             "def f():\n    from podium.blend.fit import combine\n": {"podium.blend.fit"},
             'check = LazyModule("podium.spec.check")\n': {"podium.spec.check"},
             'CODE = """\nimport json\nfrom podium.data.rle import encode\n"""\n': {"podium.data.rle"},
             'run(["-c", "import sys; from podium.data.pixels import PIXEL_NAME"])\n': {"podium.data.pixels"},
             '"import podium.data.rle, podium.blend.fit"\n': {"podium.data.rle", "podium.blend.fit"},
             '"""podium.data.pixels in a docstring is no test."""\n': set()}
    for k, (source, expected) in enumerate(forms.items()):
        path = tmp_path / f"test_{k}.py"
        path.write_text(source)
        assert named_by_tests(modules, [path]) == expected, source


def test_test_modules_have_unique_names():
    """pytest imports tests/ and tests/faults/ by basename (rootdir-relative, no __init__): two test_x.py
    stop the whole run at collection ("import file mismatch"), so a new test file needs a name of its own."""
    tests = Path(__file__).resolve().parent
    names = [path.name for path in tests.rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
