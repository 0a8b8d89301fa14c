"""The layer order of DESIGN.md holds: a package imports only packages below it.

Every module of every layer is parsed with ``ast`` (imports inside functions included, since
a function-level import is still a dependency), so an upward import fails here instead of
surfacing later as an import cycle or a lower layer that cannot run without the CLI. The
README's "Architecture" section lists the same order.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: bottom to top; a package may import the ones before it.
LAYERS = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")


def imported_packages(source: str) -> Iterator[str]:
    """Top-level package of every absolute import in ``source``, at any depth of the tree."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def upward_imports() -> set[tuple[str, str]]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    found = set()
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for package in imported_packages(path.read_text("utf-8")):
                if package in rank and rank[package] > rank[layer]:
                    found.add((module, package))
    return found


def test_no_package_imports_a_layer_above_it() -> None:
    missing = [layer for layer in LAYERS if not (ROOT / layer / "__init__.py").exists()]
    assert not missing, f"layers renamed or gone, update LAYERS: {missing}"
    found = sorted(upward_imports())
    assert not found, "upward imports (DESIGN.md, 'Layout and layering'):\n" + "\n".join(
        f"{m} -> {p}" for m, p in found
    )


def test_the_readme_lists_the_layers_in_this_order() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    assert tuple(re.findall(r"^\d+\. `(\w+)/`", section, re.M)) == LAYERS


def test_the_check_sees_imports_inside_functions() -> None:
    source = "import dc.config\ndef f():\n    from bcpctl.web import app\n    import monitoring.jobs as j\n"
    assert set(imported_packages(source)) == {"dc", "bcpctl", "monitoring"}


#: cycles between modules of one package that are older than the check, to be broken; no new ones
KNOWN_CYCLES = {
    frozenset({"dc.audit", "dc.continuation"}),
    frozenset({"backup.manifest", "backup.repository", "backup.snapshot"}),
    frozenset({"backup.check", "backup.inventory"}),
    frozenset({"monitoring.checks", "monitoring.controlplane", "monitoring.sources"}),
}


def module_graph(layer: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, at any depth of its tree (a
    function-level or ``TYPE_CHECKING`` import is still a dependency)."""
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (ROOT / layer).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from pkg import submodule`` needs the submodule; a name defined in pkg needs pkg
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                deps |= subs if len(subs) == len(node.names) else subs | {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[module] = {d for d in deps if d in modules and d != module and d != layer}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_no_new_import_cycle_inside_a_package(layer: str) -> None:
    new = [sorted(c) for c in cycles(module_graph(layer)) if c not in KNOWN_CYCLES]
    assert not new, "modules that import each other (directly or around a loop): " + "; ".join(
        " <-> ".join(c) for c in new
    )


def test_the_cycle_check_sees_a_loop_through_a_function_level_import() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert cycles(graph) == [frozenset({"p.a", "p.b", "p.c"})]
