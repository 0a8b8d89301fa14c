"""Folders bcpctl ships beside its Python code: the Ansible playbooks and the example files.

They are top-level folders of the source tree (``playbooks/``, ``examples/``): the consortium
asked for them there, and the README, docs and tests name them so. A wheel carries each one
inside the package that reads it (``dc/playbooks``, ``bcpctl/examples``: the package-dir
entries of pyproject.toml), so an installed bcpctl finds it with importlib.resources and a
source checkout finds it beside the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dc.errors import N_, UsageError


def shipped_folder(package: str, name: str) -> Path:
    """The folder ``name`` as installed inside ``package``, else the checkout's top-level ``name``.

    A real directory, not a Traversable: ansible-runner copies the playbooks as a file tree.
    """
    root = resources.files(package)
    if not isinstance(root, Path):
        raise UsageError(
            N_("bcpctl is installed in an archive; {name}/ needs an installation as files (pip install)"), name=name
        )
    inside = root / name
    return inside if inside.is_dir() else root.parent / name
