"""Every module of every package imports.

Many modules are imported only inside functions (metric sources, commands, jobs) so that a
command pays only for what it uses; a broken import there shows only when that path runs, and
a metrics source that fails to import is reported as one failing source, not as an error.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")
#: run only by Alembic, inside its migration context
NOT_IMPORTABLE_ALONE = {"dc.migrations.env"}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, f"{package}.")]
    return sorted(set(names) - NOT_IMPORTABLE_ALONE)


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name: str) -> None:
    importlib.import_module(name)
