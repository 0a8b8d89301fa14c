"""Checksum manifests: the proof that a tool's restore holds exactly the dataset it backed up.

A restore that is fast but wrong must fail the benchmark, so every restored tree is compared
file by file (path set and BLAKE3 of content) with the manifest of the source taken right
before the last backup.
"""

from __future__ import annotations

from pathlib import Path

import blake3

_BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """Relative path → content digest of every regular file under ``root``."""
    return {
        p.relative_to(root).as_posix(): file_digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def differences(expected: dict[str, str], root: Path, limit: int = 5) -> list[str]:
    """What differs between ``expected`` and the tree at ``root``; empty when they match."""
    if not root.is_dir():
        return [f"restored tree {root} does not exist"]
    got = manifest(root)
    problems = [f"missing {p}" for p in sorted(expected.keys() - got.keys())]
    problems += [f"unexpected {p}" for p in sorted(got.keys() - expected.keys())]
    problems += [f"content differs: {p}" for p in sorted(expected.keys() & got.keys()) if expected[p] != got[p]]
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more"]
    return problems


def read_all(root: Path) -> int:
    """Read ``root`` (a file, or every file under a directory) once so the page cache holds it."""
    total = 0
    for p in [root] if root.is_file() else root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                while block := f.read(_BLOCK):
                    total += len(block)
    return total


def tree_bytes(root: Path) -> int:
    """Apparent size of all regular files under ``root`` (a repository's size)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
