"""podium's modules import each other without cycles and only downward through the layers, counting imports
inside functions too.

A cycle hidden in a function still ties two modules together: neither can be understood, tested or moved
without the other, and module-level use of either turns it into an ImportError. An import that climbs a
layer does the same at a larger scale: the lower module can no longer be read, tested or loaded (config
without keras) without the higher one. The graph is read from the source (AST), so nothing is imported to
build it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import podium

SRC = Path(podium.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _lazy_target(node: ast.AST) -> str:
    """The module a `LazyModule("podium.x")` call names, else ""."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "LazyModule" \
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return ""


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The podium modules an import statement names (`from podium.x import y` counts podium.x.y when that
    is a module, else podium.x)."""
    if _lazy_target(node):  # LazyModule("podium.x"): an import, made on first use
        names = [_lazy_target(node)]
    elif isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return []
    found = []
    for name in names:
        while name and name not in modules:  # `import podium.data.index as x` names the module itself
            name = name.rpartition(".")[0]
        if name and name != "podium":
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in SRC.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = {name for node in ast.walk(tree)
                   for name in _imported(node, module, path.name == "__init__.py", modules)}
        graph[module] = targets - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_sees_lazy_modules():
    graph = import_graph()
    assert "podium.config_reference" in graph["podium.cli.main"]  # a LazyModule: imported by _cmd_config's use


def test_podium_has_no_import_cycles():
    cycles = import_cycles(import_graph())
    assert cycles == [], f"import cycles among podium modules: {cycles}"


def _reach(graph: dict[str, set[str]], module: str) -> set[str]:
    """Every module `module` imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


# The layers, bottom to top: a module imports its own layer or lower ones (between folders of one layer too;
# cycles are refused above). `name/` is a folder (every module in it), `name` a top-level module; `podium` is
# the package's __init__. Entries may name modules still to come (lazy, spec/); a new folder or top-level
# module fails test_every_module_sits_in_exactly_one_layer until it is placed here.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("podium", "errors", "io", "paths", "backoff", "progress", "figures", "extras", "task_keys",
              "artefacts", "boxes", "lazy", "catalog",
              "box_fusion")),
    ("data", ("data/", "scoring/", "submission/", "config", "config_reference")),
    ("parts", ("models/", "training/", "reports/")),  # training/: the pieces tasks use; reports: plots, summaries
    ("tasks", ("tasks/",)),
    ("runners", ("runners/", "experiments/", "workflow", "spec/")),
    ("products", ("blend/", "search/", "kaggle/")),
    ("entry", ("cli/",)),
]


def _place(module: str) -> str:
    """The LAYERS entry a module falls under: `data/` for podium.data.x (and podium.data), `config` for
    podium.config, `podium` for the package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return "podium"
    folder = SRC / parts[1]
    return f"{parts[1]}/" if folder.is_dir() else parts[1]


def layer_of() -> dict[str, int]:
    """Each LAYERS entry -> its layer's position (0 = base)."""
    return {entry: rank for rank, (_, entries) in enumerate(LAYERS) for entry in entries}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer, as `a -> b (layer x -> layer y)`."""
    rank, names = layer_of(), [name for name, _ in LAYERS]
    found = []
    for module in sorted(graph):
        for target in sorted(graph[module]):
            here, there = rank.get(_place(module), -1), rank.get(_place(target), -1)  # unplaced: the test above
            if here >= 0 and there > here:
                found.append(f"{module} -> {target} (layer {names[here]} -> layer {names[there]})")
    return found


def test_every_module_sits_in_exactly_one_layer():
    entries = [entry for _, layer in LAYERS for entry in layer]
    assert sorted(e for e in set(entries) if entries.count(e) > 1) == [], "an entry is in two layers"
    unplaced = sorted({_place(module) for module in import_graph()} - set(entries))
    assert unplaced == [], f"modules or folders the layer table does not place (add them to LAYERS): {unplaced}"


def test_imports_only_go_down_the_layers():
    upward = upward_imports(import_graph())
    assert upward == [], "imports of a higher layer:\n" + "\n".join(upward)


def test_the_layer_check_sees_an_upward_import():
    graph = {"podium.config": {"podium.training.augment"}, "podium.training.augment": {"podium.errors"}}
    assert upward_imports(graph) == ["podium.config -> podium.training.augment (layer data -> layer parts)"]


def test_config_and_data_sit_below_the_task_objects():
    """The task objects use data/ (the index, targets, the dataset); config and data/ know a task only by its
    name and its keys (podium.task_keys), and a data stage that differs per task is handed the task object."""
    graph = import_graph()
    below = [m for m in graph if m in ("podium.config", "podium.task_keys") or m.startswith("podium.data.")]
    reaching = {m: sorted(t for t in _reach(graph, m) if t == "podium.tasks" or t.startswith("podium.tasks."))
                for m in below}
    assert {m: tasks for m, tasks in reaching.items() if tasks} == {}


def _late_imports(tree: ast.Module) -> list[ast.AST]:
    """Imports of podium code anywhere but the module's top (an `if TYPE_CHECKING:` block counts as the top)."""
    top = {id(node) for node in tree.body}
    top |= {id(inner) for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in node.body}
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top
            and not getattr(node, "level", 0)
            and (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name).startswith("podium")]


def test_podium_code_is_imported_late_only_through_lazy_module():
    """One way to import late (podium.lazy.LazyModule, declared at a module's top with the reason beside or
    above it), never an import statement inside a function: the graph, the layers and a reader see every
    dependency at the top of the file."""
    inside, undeclared, unexplained = [], [], []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        lines, tree = text.split("\n"), ast.parse(text)
        where = path.relative_to(SRC.parent)
        inside += [f"{where}:{node.lineno}" for node in _late_imports(tree)]
        declared = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)}
        for node in ast.walk(tree):
            if not _lazy_target(node):
                continue
            if id(node) not in declared:
                undeclared.append(f"{where}:{node.lineno}")
            above = node.lineno - 1
            while above > 0 and "LazyModule(" in lines[above - 1]:
                above -= 1
            if "# imported on first use:" not in lines[node.lineno - 1] + lines[above - 1]:
                unexplained.append(f"{where}:{node.lineno}")
    assert inside == [], f"podium imported inside a function (declare a LazyModule at the top): {inside}"
    assert undeclared == [], f"a LazyModule not assigned at a module's top: {undeclared}"
    assert unexplained == [], f"a LazyModule without '# imported on first use: <why>': {unexplained}"


def test_the_late_import_check_sees_one():
    tree = ast.parse("def f():\n    from podium.config import load_config\n")
    assert len(_late_imports(tree)) == 1
    assert _late_imports(ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from podium.x import y\n")) == []


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 600, 50


def test_modules_and_functions_stay_small():
    """A module over 600 lines holds more than one job and a function over 50 lines more than one step: split
    them by job and by named step (issue 22), so a reader and a test can take one at a time."""
    big_modules, long_functions = [], []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC.parent)
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big_modules.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    assert big_modules == [], f"modules over {MAX_MODULE_LINES} lines: {big_modules}"
    assert long_functions == [], f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"


def test_no_module_imports_another_s_private_names():
    """A `_name` is its module's own business: what another module needs is public, named for what it does."""
    private = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("podium") and not node.level:
                private += [f"{path.relative_to(SRC.parent)}:{node.lineno} {alias.name}" for alias in node.names
                            if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert private == [], f"private names imported across modules: {private}"
# Where a task name becomes its object (podium.tasks.get_task): the entry points, which pass the object down.
# spec/draft: `make spec` finds the task in the files it drafts a spec for; no config or spec names it yet.
TASK_RESOLVERS = ("podium/cli/", "podium/kaggle/scripts/", "podium/tasks/__init__.py", "podium/spec/draft.py")


def _get_task_calls(tree: ast.AST) -> list[int]:
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "get_task"]


def test_the_task_is_resolved_only_at_the_entry_points():
    """get_task(name) is called by the CLI verbs and the kernel scripts (benchmarks sit outside the package):
    everything below them is handed the task object, so no module looks its task up by name twice."""
    below = [f"{path.relative_to(SRC.parent)}:{line}" for path in SRC.rglob("*.py")
             if not str(path.relative_to(SRC.parent)).startswith(TASK_RESOLVERS)
             for line in _get_task_calls(ast.parse(path.read_text(encoding="utf-8")))]
    assert below == [], f"get_task below the entry points (take the task object as a parameter): {below}"


def test_the_task_check_sees_a_call():
    assert _get_task_calls(ast.parse("from podium import tasks\ntasks.get_task(cfg.task)\nget_task('x')\n")) == [2, 3]
