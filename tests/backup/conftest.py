"""Repositories for backup tests: a real local repository per test, opened once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backup.repository import Repository, init_repository, open_repository
from storage.local import LocalBackend
from tests.conftest import PASSWORD

# Argon2id at its floor keeps per-test unlocks cheap; the CLI tests use the real default.
FAST_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    init_repository(LocalBackend(path, create=True), PASSWORD, kdf=FAST_KDF)
    return path


@pytest.fixture
def open_repo(repo_dir: Path) -> Callable[[], Iterator[Repository]]:
    def opener():  # type: ignore[no-untyped-def]
        return open_repository(LocalBackend(repo_dir), PASSWORD)

    return opener


@pytest.fixture
def repo(open_repo: Callable[[], Iterator[Repository]]) -> Iterator[Repository]:
    with open_repo() as r:  # type: ignore[attr-defined]
        yield r


def make_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    """Create files (``str`` values starting with '->' become symlinks)."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def tree_digest(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Everything a restore must reproduce: type, content or link target, per relative path."""
    found: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            if full.is_symlink():
                found[rel] = ("link", os.readlink(full))
            elif full.is_dir():
                found[rel] = ("dir", b"")
            else:
                found[rel] = ("file", full.read_bytes())
    return found
