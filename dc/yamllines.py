"""A YAML document that remembers where each value sits: field paths to line numbers.

Validation errors name a field path (``systems.goka-juki.tier``); an operator fixing the file
wants the line too. PyYAML's composed nodes carry their position (``start_mark``), so the
document is composed once, constructed from those nodes, and the nodes kept for the lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class LocatedDocument:
    """The parsed data and the node tree it was built from (``None`` for an empty file)."""

    data: Any
    root: yaml.Node | None

    def line(self, path: Sequence[str | int]) -> int | None:
        """The 1-based line of ``path``, or of its deepest part the file has (a missing field: its parent).

        A mapping entry is found at its key, so the line shown is the one that names the field.
        """
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, yaml.MappingNode):
                entry = next(
                    (e for e in node.value if isinstance(e[0], yaml.ScalarNode) and e[0].value == str(part)), None
                )
                if entry is None:
                    break
                line, node = entry[0].start_mark.line + 1, entry[1]
            elif isinstance(node, yaml.SequenceNode) and str(part).isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
            else:
                break
        return line


def load_located(text: str) -> LocatedDocument:
    """Parse ``text`` (safe constructors only); raises ``yaml.YAMLError`` as ``yaml.safe_load`` does."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return LocatedDocument(data, root)
