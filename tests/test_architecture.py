"""The layers of schemalog import only downward, with no import cycle (docs/architecture.md).

The import graph is built with `ast` from the source files and counts every import of a
schemalog module: at module level, inside functions, and under `if TYPE_CHECKING:` — a cycle of
type references still means two modules know each other. Lazy (in-function) imports of
schemalog modules are allowed only at the edge (the `schemalog` package's own modules, the CLI,
the Migrator), where they keep start-up fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {
    "schemalog": REPO / "schemalog",
    "schemalog.engine": REPO / "engine",
    "schemalog.journal": REPO / "journal",
}

#: Highest first; a module may import its own layer and the layers below it.
LAYERS = [
    ("facade", ("schemalog",)),
    ("edge", ("schemalog.engine.cli", "schemalog.engine.migrator")),
    ("commands", ("schemalog.engine.commands",)),
    ("shell", ("schemalog.engine.shell",)),
    ("core", ("schemalog.engine.core",)),
    ("files", ("schemalog.engine.files",)),
    ("base", ("schemalog.engine.base",)),
    ("journal", ("schemalog.journal",)),
]
LAZY_ALLOWED = {"facade", "edge"}
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """Every schemalog module by dotted name."""
    found: dict[str, Path] = {}
    for package, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "schemalog" and parts and parts[0] in ("engine", "journal"):
                continue
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def layer_of(name: str) -> str:
    """The layer of module `name` (the most specific prefix wins)."""
    best, best_len = None, -1
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    if name == "schemalog.engine":
        return "edge"
    assert best is not None, name
    return best


def rank(layer: str) -> int:
    return [name for name, _ in LAYERS].index(layer)


def resolve(importer: str, node: ast.ImportFrom) -> list[str]:
    """The schemalog modules an ImportFrom names (a package's submodule, or the package)."""
    if node.level:
        base = importer.split(".")
        is_package = MODULES[importer].name == "__init__.py"
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    if not module.startswith("schemalog"):
        return []
    targets = []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        targets.append(sub if sub in MODULES else module)
    return targets


class Import:
    """One import of a schemalog module."""

    def __init__(self, target: str, line: int, lazy: bool) -> None:
        self.target, self.line, self.lazy = target, line, lazy


def imports_of(name: str) -> list[Import]:
    """Every schemalog import in module `name`, marked lazy when inside a function."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("schemalog"):
                        target = (
                            alias.name if alias.name in MODULES else alias.name.rsplit(".", 1)[0]
                        )
                        found.append(Import(target, child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                for target in resolve(name, child):
                    found.append(Import(target, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return [i for i in found if i.target != name]


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for edge in GRAPH[v]:
            w = edge.target
            if w not in GRAPH:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            strong(v)
    return found


class TestImportGraph:
    def test_the_graph_sees_every_package(self):
        """The walk finds modules of every layer (so the other tests mean something)."""
        assert {layer_of(m) for m in MODULES} == {name for name, _ in LAYERS}
        assert len(MODULES) > 40

    def test_no_import_cycle(self):
        """No two modules import each other, directly or through others, lazily or for types."""
        assert cycles() == []

    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_imports_only_downward(self, name: str):
        """A module imports its own layer and the layers below it, never one above."""
        mine = rank(layer_of(name))
        upward = [
            f"{name}:{i.line} imports {i.target} ({layer_of(i.target)})"
            for i in GRAPH[name]
            if i.target in MODULES and rank(layer_of(i.target)) < mine
        ]
        assert upward == []

    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_lazy_imports_only_at_the_edge(self, name: str):
        """Below the CLI and the Migrator, schemalog modules are imported at module level."""
        if layer_of(name) in LAZY_ALLOWED:
            return
        lazy = [
            f"{name}:{i.line} imports {i.target} inside a function" for i in GRAPH[name] if i.lazy
        ]
        assert lazy == []

    def test_journal_knows_nothing_of_the_engine(self):
        """`schemalog.journal` never imports `schemalog.engine`."""
        leaks = [
            (m, i.target)
            for m in MODULES
            if layer_of(m) == "journal"
            for i in GRAPH[m]
            if i.target.startswith("schemalog.engine")
        ]
        assert leaks == []

    def test_a_cycle_is_detected(self, monkeypatch):
        """The cycle check itself fails on a planted cycle (it can fail)."""
        a, b = "schemalog.engine.core.plan", "schemalog.engine.core.retention"
        monkeypatch.setitem(GRAPH, b, [*GRAPH[b], Import(a, 1, False)])
        monkeypatch.setitem(GRAPH, a, [*GRAPH[a], Import(b, 1, False)])
        assert [a, b] in cycles()


class TestModules:
    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_modules_stay_small(self, name: str):
        """Each module holds one concept, in about 400 lines at most."""
        lines = MODULES[name].read_text(encoding="utf-8").count("\n")
        assert lines <= MAX_LINES, f"{name} has {lines} lines"

    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_every_module_says_what_it_holds(self, name: str):
        """Every module starts with a docstring."""
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{name} has no docstring"

    def test_no_utils_module(self):
        """No grab-bag module: every name says its concept."""
        assert not [
            m for m in MODULES if m.rsplit(".", 1)[-1] in ("utils", "helpers", "misc", "common")
        ]
