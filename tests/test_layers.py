"""The layer order of DESIGN.md holds: a package imports only packages below it, and no modules import in a circle.

Every module of every layer is parsed with ``ast`` (imports inside functions included, since
a function-level import is still a dependency), so an upward import fails here instead of
surfacing later as an import cycle or a lower layer that cannot run without the CLI. Inside
a package the same parse finds modules that import one another: an import moved into a
function hides such a cycle from Python, not from the reader, so it fails here too. The
README's "Architecture" section lists the same order.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: bottom to top; a package may import the ones before it.
LAYERS = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")

#: what each layer may import (DESIGN.md's table, and the "Imports:" line of each README item): the
#: order alone would let victim_support use replication's sync, which it must not need
MAY_IMPORT: dict[str, frozenset[str]] = {
    "dc": frozenset(),
    "storage": frozenset({"dc"}),
    "backup": frozenset({"dc", "storage"}),
    "replication": frozenset({"dc", "storage", "backup"}),
    "failover": frozenset({"dc", "storage", "backup", "replication"}),
    "victim_support": frozenset({"dc", "storage", "backup", "failover"}),
    "monitoring": frozenset(LAYERS[: LAYERS.index("monitoring")]),
    "bcpctl": frozenset(LAYERS[: LAYERS.index("bcpctl")]),
}

#: the clock's names, which only :mod:`dc.clock` defines: taken through another module they tie a
#: lower layer's day to a higher one (``failover.calendar`` re-exported ``JST`` to victim_support)
CLOCK_NAMES = frozenset({"JST", "NO_TIME", "jst_day", "jst_text", "utcnow"})

#: module cycles known and being removed; each entry must match a found cycle exactly
ALLOWED_CYCLES: set[frozenset[str]] = set()


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


def layer_imports() -> dict[str, dict[str, set[str]]]:
    """``{layer: {imported layer: modules of the layer that import it}}`` for every layer."""
    found: dict[str, dict[str, set[str]]] = {layer: {} for layer in LAYERS}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for package in imported_packages(path.read_text("utf-8")):
                if package in LAYERS and package != layer:
                    found[layer].setdefault(package, set()).add(module)
    return found


def readme_imports() -> dict[str, frozenset[str]]:
    """The layers each item of the README's "Architecture" list says its package imports."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    found: dict[str, frozenset[str]] = {}
    for item in re.split(r"^(?=\d+\. `)", section, flags=re.M)[1:]:
        layer = re.match(r"\d+\. `(\w+)/`", item)
        said = re.search(r"Imports: ([^.]*)\.", item)
        assert layer and said, f"README architecture item without 'Imports: ...': {item[:60]!r}"
        if said.group(1) == "none":
            found[layer.group(1)] = frozenset()
        elif said.group(1) == "every package before it":
            found[layer.group(1)] = frozenset(LAYERS[: LAYERS.index(layer.group(1))])
        else:
            found[layer.group(1)] = frozenset(re.findall(r"`(\w+)`", said.group(1).split("(")[0]))
    return found


def module_imports(name: str, source: str, modules: Collection[str], *, package: bool = False) -> set[str]:
    """The modules of ``modules`` that module ``name`` imports, at any depth of its tree.

    ``from pkg import x`` imports the module ``pkg.x`` when there is one, else (a name defined
    in ``pkg``) the package ``pkg`` itself; ``import a.b.c`` imports the deepest of those that
    is a module. Relative imports are resolved against ``name`` (``package``: it is an ``__init__``).
    """
    here = name.split(".") if package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*here[: len(here) - node.level + 1], *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_sources() -> dict[str, tuple[str, bool]]:
    """``{module: (source, is a package)}`` for every module of every layer."""
    found = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if package else parts)] = (path.read_text("utf-8"), package)
    return found


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> dict[str, set[str]]:
    return {
        name: module_imports(name, text, sources.keys(), package=package) for name, (text, package) in sources.items()
    }


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Each group of modules that reach one another through imports (a strongly connected component)."""
    reach = {}
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph.get(module, ())
        reach[start] = seen
    cycles, placed = [], set()
    for module in sorted(graph):
        if module in reach[module] and module not in placed:
            members = sorted(other for other in reach[module] if module in reach[other])
            placed.update(members)
            cycles.append(members)
    return cycles


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


def test_each_layer_imports_only_the_layers_design_allows_it() -> None:
    assert set(MAY_IMPORT) == set(LAYERS)
    for layer, allowed in MAY_IMPORT.items():
        assert allowed <= set(LAYERS[: LAYERS.index(layer)]), f"{layer} may import a layer above it"
    found = [
        f"{module} -> {package}"
        for layer, imports in layer_imports().items()
        for package, modules in sorted(imports.items())
        if package not in MAY_IMPORT[layer]
        for module in sorted(modules)
    ]
    assert not found, "imports DESIGN.md's table does not allow (README 'Architecture', MAY_IMPORT):\n" + "\n".join(
        found
    )


def test_the_readme_says_what_each_layer_may_import() -> None:
    assert readme_imports() == MAY_IMPORT


def test_victim_support_and_failover_use_storage_below_them() -> None:
    """Both open a site's repository through storage's one opener, so the allowance is used, not stale."""
    imports = layer_imports()
    assert "storage" in imports["failover"] and "storage" in imports["victim_support"]


def test_the_clock_is_imported_from_dc_clock_only() -> None:
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module != "dc.clock":
                    names = {alias.name for alias in node.names} & CLOCK_NAMES
                    if names and node.level == 0:
                        found.append(f"{path.relative_to(ROOT)}: {', '.join(sorted(names))} from {node.module}")
    assert not found, "the clock comes from dc.clock (DESIGN.md: the clock lives in dc):\n" + "\n".join(found)


def test_the_check_sees_imports_inside_functions() -> None:
    source = "import dc.config\ndef f():\n    from bcpctl.web import app\n    import monitoring.jobs as j\n"
    assert set(imported_packages(source)) == {"dc", "bcpctl", "monitoring"}


def test_no_modules_import_one_another_in_a_circle() -> None:
    graph = import_graph(layer_sources())
    cycles = import_cycles(graph)
    found = [members for members in cycles if frozenset(members) not in ALLOWED_CYCLES]
    assert not found, "modules that import one another (give the shared concept its own module):\n" + "\n".join(
        ", ".join(f"{a} -> {b}" for a in members for b in sorted(graph[a]) if b in members) for members in found
    )
    gone = ALLOWED_CYCLES - {frozenset(members) for members in cycles}
    assert not gone, (
        f"allowed cycles that no longer exist, remove them from ALLOWED_CYCLES: {sorted(map(sorted, gone))}"
    )


def test_the_cycle_check_sees_a_cycle_through_an_import_inside_a_function() -> None:
    sources = {
        "pkg": ("from pkg.story import run\nVERSION = 1\n", True),
        # a submodule taken from its package is that module, not the package: no cycle with pkg
        "pkg.story": ("from pkg import model\n", False),
        "pkg.model": ("def load():\n    from pkg.store import save\n", False),
        "pkg.store": ("import pkg.model.sub as m\n", False),
        "pkg.names": ("from pkg import VERSION\nfrom . import model\n", False),
    }
    graph = import_graph(sources)
    assert graph["pkg.story"] == {"pkg.model"}
    assert graph["pkg.store"] == {"pkg.model"}
    assert graph["pkg.names"] == {"pkg", "pkg.model"}
    assert import_cycles(graph) == [["pkg.model", "pkg.store"]]
