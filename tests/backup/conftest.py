"""Repositories for backup tests: a real local repository per test, opened once."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from backup import chainsign
from backup.opening import init_repository, open_repository
from backup.repository import Repository
from backup.tree import kind_of
from storage.backend import Backend
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
def open_repo(repo_dir: Path) -> Callable[[], AbstractContextManager[Repository]]:
    def opener() -> AbstractContextManager[Repository]:
        return open_repository(LocalBackend(repo_dir), PASSWORD)

    return opener


@pytest.fixture
def repo(open_repo: Callable[[], AbstractContextManager[Repository]]) -> Iterator[Repository]:
    with open_repo() as r:
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


#: kind (None: a type this system does not know), mode, payload, mtime
State = dict[bytes, tuple[str | None, int, object, int | None]]


def tree_state(root: Path, *, times: bool = True) -> State:
    """Everything a restore must reproduce, per relative path in bytes (the root excluded):
    type, mode, content / link target / device number, and mtime. Never follows a link,
    never opens anything but a regular file."""
    state: State = {}
    base = os.fsencode(root)

    def visit(rel: bytes) -> None:
        with os.scandir(base + b"/" + rel if rel else base) as listing:
            for child in listing:
                path = rel + b"/" + child.name if rel else child.name
                st = child.stat(follow_symlinks=False)
                kind = kind_of(st.st_mode)
                payload: object = None
                if kind == "file":
                    with open(child.path, "rb") as f:
                        payload = f.read()
                elif kind == "symlink":
                    payload = os.readlink(child.path)
                elif kind in ("chardev", "blockdev"):
                    payload = st.st_rdev
                mode = 0 if kind == "symlink" else stat.S_IMODE(st.st_mode)
                state[path] = (kind, mode, payload, st.st_mtime_ns if times else None)
                if kind == "dir":
                    visit(path)

    visit(b"")
    return state


def link_groups(root: Path) -> set[frozenset[bytes]]:
    """The hard-link structure: sets of relative paths (bytes) naming one non-directory (a file, link or node)."""
    by_inode: dict[tuple[int, int], set[bytes]] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not stat.S_ISDIR(st.st_mode):
                by_inode.setdefault((st.st_dev, st.st_ino), set()).add(os.path.relpath(full, base))
    return {frozenset(paths) for paths in by_inode.values() if len(paths) > 1}


def counting_link_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the links the signer reads from now on, in order."""
    read: list[str] = []
    real = chainsign.link_reader

    def counted(backend: Backend) -> Callable[[str], bytes]:
        load = real(backend)
        return lambda key: read.append(key) or load(key)

    monkeypatch.setattr(chainsign, "link_reader", counted)
    return read
