"""A local repository holding something that is not a regular file where an object belongs.

The class behind hostile finding 4: whoever can write the repository directory (or a careless
``cp -a``) leaves a FIFO, a socket, a device or a link to one under any folder. Nothing may
wait on it for ever or read it without end: ``list`` leaves it out, every read refuses it at
once as :class:`NotARegularFile`, and ``strays`` names it (for ``check``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.capabilities import StrayEntries, as_capability
from storage.errors import NotARegularFile
from storage.local import LocalBackend
from storage.url import open_backend

FOLDERS = ("keys", "snapshots", "index", "data/00", "meta/ab", "locks", "")
NAME = "00" * 32


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO"


def _socket(path: Path) -> str:
    with socket.socket(socket.AF_UNIX) as sock, contextlib.chdir(path.parent):  # AF_UNIX paths are short
        sock.bind(path.name)
    return "a socket"


def _endless_device(path: Path) -> str:
    path.symlink_to("/dev/zero")
    return "a device"


def _link_to_fifo(path: Path) -> str:
    os.mkfifo(path.with_name(".target"))  # a dot name: list and strays skip it, the link is what counts
    path.symlink_to(path.with_name(".target"))
    return "a FIFO"


TRAPS: dict[str, Callable[[Path], str]] = {
    "fifo": _fifo,
    "socket": _socket,
    "endless device": _endless_device,
    "link to a fifo": _link_to_fifo,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("trap", sorted(TRAPS))
@pytest.mark.parametrize("folder", FOLDERS)
def test_a_non_regular_entry_is_never_listed_never_read_and_named(tmp_path: Path, folder: str, trap: str) -> None:
    backend = open_backend(str(tmp_path), create=True)
    key = f"{folder}/{NAME}" if folder else "config"
    backend.save(f"{folder}/{'11' * 32}" if folder else "manifest", b"a real object")
    (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
    kind = TRAPS[trap](tmp_path / key)
    try:
        assert key not in {info.key for info in backend.list("")}
        assert key not in {info.key for info in backend.list(folder)}
        for read in (lambda: backend.load(key), lambda: backend.load(key, 0, 10)):
            with pytest.raises(NotARegularFile):
                read()
        if key.startswith(("data/", "meta/")):
            with pytest.raises(NotARegularFile):
                backend.load_into(key, 0, memoryview(bytearray(10)))
        strays = as_capability(backend, StrayEntries)
        assert strays is not None and list(strays.strays("")) == [(key, kind)]
    finally:
        backend.close()


def test_a_directory_where_the_config_belongs_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    backend = LocalBackend(tmp_path)
    with pytest.raises(NotARegularFile):
        backend.load("config")
