"""Directories beneath the restore target: opened without following links, cached, and checked.

Every directory is reached one component at a time from the target's descriptor with
``O_NOFOLLOW | O_DIRECTORY`` (no ``openat2`` ``RESOLVE_BENEATH`` in Python's standard library;
names never hold ``..`` or ``/`` by then), so a link planted in the target is never followed.
A link, file, FIFO or device where a directory goes is never opened: it is replaced under
``--overwrite``, else the entries beneath it are not restored.

Descriptors are cached (a restore writes many files per directory), so a directory renamed out
of the target meanwhile keeps receiving the files written through its descriptor — without
``openat2`` nothing prevents that. :meth:`Directories.still_beneath` is how a restore learns it:
it looks the path up afresh from the root and compares the identity (``st_dev``, ``st_ino``)
with that of the descriptor the entries went through.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
from typing import Literal

from backup.tree import kind_of
from dc.errors import N_, Message

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: open directory descriptors kept per process (files of one restore unit share a directory)
_CACHED_DIRS = 64

#: a directory's ``(st_dev, st_ino)``
Identity = tuple[int, int]


class NotPlaced(Exception):
    """One entry could not be restored; the message (a :class:`~dc.errors.Message`) says why.
    Never leaves the restore."""


class Directories:
    """The directories beneath one root descriptor, as one process or thread opened them."""

    def __init__(self, root_fd: int, overwrite: Literal["never", "if-changed", "always"]) -> None:
        self.root_fd = root_fd
        self.overwrite = overwrite
        root = os.fstat(root_fd)
        self._dirs: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._ids: dict[str, Identity] = {"": (root.st_dev, root.st_ino)}
        #: the identity each directory had when this handle first opened it (never evicted): a
        #: directory found later at the same path but with another identity was replaced
        self._first: dict[str, Identity] = dict(self._ids)

    def close(self) -> None:
        """Close the cached descriptors (not the root's)."""
        while self._dirs:
            os.close(self._dirs.popitem()[1])

    def dir_fd(self, rel: str) -> int:
        """The directory ``rel`` beneath the root, created (0700) where missing; cached."""
        if not rel:
            return self.root_fd
        fd = self._dirs.get(rel)
        if fd is not None:
            self._dirs.move_to_end(rel)
            return fd
        # Walk down from the deepest cached ancestor (iterative: paths may be deeper than the
        # interpreter's recursion limit).
        parts = rel.split("/")
        start, fd = 0, self.root_fd
        for depth in range(len(parts) - 1, 0, -1):
            cached = self._dirs.get("/".join(parts[:depth]))
            if cached is not None:
                start, fd = depth, cached
                break
        for depth in range(start, len(parts)):
            fd = self._open_dir(fd, parts[depth], "/".join(parts[: depth + 1]))
        return fd

    def _open_dir(self, parent_fd: int, name: str, rel: str) -> int:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            fd = self._reopen_dir(parent_fd, name, rel)
        except OSError as exc:
            if not _not_a_directory(exc):
                raise
            fd = self._reopen_dir(parent_fd, name, rel)
        self._dirs[rel] = fd
        st = os.fstat(fd)
        self._ids[rel] = (st.st_dev, st.st_ino)
        self._first.setdefault(rel, self._ids[rel])
        if len(self._dirs) > _CACHED_DIRS:
            evicted, old = self._dirs.popitem(last=False)
            os.close(old)
            self._ids.pop(evicted, None)
        return fd

    def identity(self, rel: str) -> Identity:
        """The identity of the directory :meth:`dir_fd` gave for ``rel`` (call right after it)."""
        return self._ids[rel]

    def first_identity(self, rel: str) -> Identity:
        """The identity ``rel`` had when this handle first opened it (opening it now if it never did)."""
        if rel not in self._first:
            self.dir_fd(rel)
        return self._first[rel]

    def still_beneath(self, rel: str, identity: Identity) -> bool:
        """Whether the directory at ``rel``, looked up now from the root without following a link, is ``identity``."""
        fd, opened = self.root_fd, []
        try:
            for part in rel.split("/") if rel else ():
                fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                opened.append(fd)
            st = os.fstat(fd)
            return (st.st_dev, st.st_ino) == identity
        except OSError:
            return False
        finally:
            for fd in opened:
                os.close(fd)

    def _reopen_dir(self, parent_fd: int, name: str, rel: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if not _not_a_directory(exc):
                raise
        # A link, file, FIFO or device sits where a directory goes: never opened, only replaced.
        kind = _kind_at(parent_fd, name)
        if self.overwrite == "never":
            raise NotPlaced(
                Message(
                    N_("the target holds a {kind} at {path}, where a directory goes (see --overwrite)"),
                    kind=kind,
                    path=repr(rel),
                )
            )
        os.unlink(name, dir_fd=parent_fd)
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _not_a_directory(exc: OSError) -> bool:
    return exc.errno in (errno.ENOTDIR, errno.ELOOP)


#: what stands where a directory goes, named for the operator
_KIND_NAMES = {
    "nothing": Message(N_("nothing")),
    "file": Message(N_("file")),
    "dir": Message(N_("dir")),
    "symlink": Message(N_("symbolic link")),
    "fifo": Message(N_("fifo")),
    "socket": Message(N_("socket")),
    "chardev": Message(N_("device")),
    "blockdev": Message(N_("device")),
}


def _kind_at(dir_fd: int, name: str) -> Message:
    st = lstat_at(dir_fd, name)
    kind = (kind_of(st.st_mode) if st is not None else "nothing") or "file"
    return _KIND_NAMES.get(kind, _KIND_NAMES["file"])
