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
