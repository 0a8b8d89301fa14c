"""The restore target: every entry placed beneath the target's directory descriptor.

Nothing is ever written through what the target already holds. Paths are resolved one
component at a time from the target's descriptor, each directory opened with
``O_NOFOLLOW | O_DIRECTORY`` (Python's standard library has no ``openat2`` with
``RESOLVE_BENEATH``; names are checked for ``..`` and ``/`` before they get here, so a
component-wise walk that never follows a link stays beneath the target). Every entry is
created under a temporary name in its directory — a file only once its SHA-256 matched the
backup's record — and renamed over its final name. ``rename`` replaces a directory entry,
it never opens what was there: a FIFO, a device, a link or a file with other names (a hard
link to a file outside the target) planted at that name is left untouched, merely unlinked
from the target.

What may be replaced is the overwrite policy's to say (restic's ``--overwrite``): ``never``
refuses a non-empty target before anything is written; ``if-changed`` leaves entries that
already match the snapshot (type, size and content hash) alone and replaces the rest;
``always`` replaces everything the snapshot holds. An entry of the wrong type (a directory
where a file goes) is removed — beneath the descriptor, never following a link — only
under ``if-changed`` or ``always``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import os
import posixpath
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from backup.errors import CorruptObject, TargetNotEmpty
from backup.tree import Entry, kind_of
from dc.errors import UsageError

_T = TypeVar("_T")

Overwrite = Literal["never", "if-changed", "always"]
OVERWRITE_POLICIES: tuple[Overwrite, ...] = ("never", "if-changed", "always")
ReadFn = Callable[[bytes], "bytes | memoryview"]
ProgressFn = Callable[[int], None]

#: names of entries being written; a restore killed midway leaves them, never a partial file
#: under its final name
TEMP_PREFIX = ".bcpctl-restore-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: open directory descriptors kept per process (files of one restore unit share a directory)
_CACHED_DIRS = 64


class NotPlaced(Exception):
    """One entry could not be restored; the message says why. Never leaves the restore."""


def open_root(target: Path, overwrite: Overwrite) -> int:
    """The target's directory descriptor, the directory created if missing.

    Under ``never`` a target holding anything is refused here, before a single write. The
    path the operator gave is theirs and is followed as given; only what lies beneath it is
    resolved without following links.
    """
    if overwrite not in OVERWRITE_POLICIES:
        raise UsageError(f"unknown overwrite policy {overwrite!r}; use one of {', '.join(OVERWRITE_POLICIES)}")
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"restore target {target} is not a directory") from None
    except OSError as exc:
        raise UsageError(f"cannot use restore target {target}: {exc.strerror}") from None
    if overwrite == "never":
        with os.scandir(fd) as listing:
            occupied = next(listing, None) is not None
        if occupied:
            os.close(fd)
            raise TargetNotEmpty(
                f"restore target {target} is not empty; nothing was written "
                "(--overwrite if-changed or --overwrite always restores into it)"
            )
    return fd


def split(path: str) -> tuple[str, str]:
    """``(parent directory, name)`` of a snapshot path."""
    parent, name = posixpath.split(path)
    return parent, name


class Target:
    """Placement beneath one directory descriptor; one per process or thread (:meth:`view`)."""

    def __init__(self, root_fd: int, overwrite: Overwrite, *, as_root: bool) -> None:
        self.root_fd = root_fd
        self.overwrite = overwrite
        self.as_root = as_root
        self._dirs: collections.OrderedDict[str, int] = collections.OrderedDict()

    def view(self) -> Target:
        """Another handle on the same target with its own directory descriptors (for a thread)."""
        return Target(self.root_fd, self.overwrite, as_root=self.as_root)

    def close(self) -> None:
        """Close this handle's directory descriptors (not the root's)."""
        while self._dirs:
            os.close(self._dirs.popitem()[1])

    # -- directories ---------------------------------------------------------------------------

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
        if len(self._dirs) > _CACHED_DIRS:
            os.close(self._dirs.popitem(last=False)[1])
        return fd

    def _reopen_dir(self, parent_fd: int, name: str, rel: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if not _not_a_directory(exc):
                raise
        # A link, file, FIFO or device sits where a directory goes: never opened, only replaced.
        kind = _kind_at(parent_fd, name)
        if self.overwrite == "never":
            raise NotPlaced(f"the target holds a {kind} at {rel!r}, where a directory goes (see --overwrite)")
        os.unlink(name, dir_fd=parent_fd)
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)

    def finish_dir(self, entry: Entry) -> None:
        """Owner, mode and times of a directory, once everything beneath it is written."""
        apply_metadata(self.dir_fd(entry["path"]), entry, as_root=self.as_root)

    # -- files ---------------------------------------------------------------------------------

    def write_file(self, entry: Entry, read: ReadFn, progress: ProgressFn | None) -> tuple[int, bool]:
        """Restore one file; ``(bytes written, written)`` — not written: it already matched.

        Raises :class:`NotPlaced` when its content cannot be read or differs from the record;
        nothing is then left under its name or a temporary one.
        """
        size, sha256, chunk_ids = _file_fields(entry)
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        existing = _lstat(dir_fd, name)
        if existing is not None:
            if self.overwrite == "never":
                raise NotPlaced("the target already holds an entry at this path (see --overwrite)")
            if self.overwrite == "if-changed" and self._keep_file(dir_fd, name, existing, entry, size, sha256):
                if progress:
                    progress(size)
                return 0, False
        temp, fd = self._create(dir_fd, lambda temp: os.open(temp, _NEW_FILE, 0o600, dir_fd=dir_fd))
        try:
            digest = hashlib.sha256()
            written = 0
            for chunk_id in chunk_ids:
                try:
                    data = read(chunk_id)
                except CorruptObject as exc:
                    raise NotPlaced(exc.message) from None
                # AES-GCM authenticated each blob; the file's SHA-256 checks the whole.
                digest.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(data)
                if progress:
                    progress(len(data))
            if written != size or digest.hexdigest() != sha256:
                raise NotPlaced("the restored bytes differ from the backup record")
            apply_metadata(fd, entry, as_root=self.as_root)
        except BaseException:
            os.close(fd)
            _discard(dir_fd, temp)
            raise
        os.close(fd)
        self._put(dir_fd, temp, name)
        return written, True

    def _keep_file(self, dir_fd: int, name: str, st: os.stat_result, entry: Entry, size: int, sha256: str) -> bool:
        """Whether an existing file already is the snapshot's (its metadata then set again).

        A file with other names is never kept: setting its mode or times would reach every
        name, some perhaps outside the target.
        """
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size != size:
            return False
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return False
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or now.st_nlink != 1:
                return False
            with open(fd, "rb", closefd=False) as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != sha256:
                    return False
            apply_metadata(fd, entry, as_root=self.as_root)
            return True
        finally:
            os.close(fd)

    # -- links and special files ---------------------------------------------------------------

    def place_symlink(self, entry: Entry) -> bool:
        """The link with its exact target bytes, never followed; ``False``: it already matched."""
        target = entry["target"]
        if not target or "\0" in target:
            raise NotPlaced("the snapshot records an impossible link target")
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        existing = self._check_existing(dir_fd, name)
        if (
            existing is not None
            and self.overwrite == "if-changed"
            and stat.S_ISLNK(existing.st_mode)
            and os.readlink(name, dir_fd=dir_fd) == target
        ):
            _link_metadata(dir_fd, name, entry, as_root=self.as_root)
            return False
        temp, _ = self._create(dir_fd, lambda temp: os.symlink(target, temp, dir_fd=dir_fd))
        self._finish_special(dir_fd, temp, name, entry, chmod=False)
        return True

    def place_node(self, entry: Entry, device: int | None) -> None:
        """A FIFO (``device`` None) or device node, made under a temporary name."""
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        self._check_existing(dir_fd, name)
        if device is None:
            make = lambda temp: os.mkfifo(temp, 0o600, dir_fd=dir_fd)  # noqa: E731
        else:
            kind = stat.S_IFCHR if entry["type"] == "chardev" else stat.S_IFBLK
            make = lambda temp: os.mknod(temp, kind | 0o600, device, dir_fd=dir_fd)  # noqa: E731
        temp, _ = self._create(dir_fd, make)
        self._finish_special(dir_fd, temp, name, entry, chmod=True)

    def place_hardlink(self, entry: Entry) -> None:
        """Another name for a file restored earlier in this restore (the caller checks which)."""
        source_parent, source_name = split(entry["link"])
        # a copy: looking up the link's own directory may push the source's out of the cache
        source_fd = os.dup(self.dir_fd(source_parent))
        try:
            if not stat.S_ISREG(os.stat(source_name, dir_fd=source_fd, follow_symlinks=False).st_mode):
                raise NotPlaced(f"hard link to {entry['link']!r}, which is not a restored file")
            parent, name = split(entry["path"])
            dir_fd = self.dir_fd(parent)
            self._check_existing(dir_fd, name)
            temp, _ = self._create(
                dir_fd,
                lambda temp: os.link(source_name, temp, src_dir_fd=source_fd, dst_dir_fd=dir_fd, follow_symlinks=False),
            )
        finally:
            os.close(source_fd)
        self._put(dir_fd, temp, name)

    def _check_existing(self, dir_fd: int, name: str) -> os.stat_result | None:
        existing = _lstat(dir_fd, name)
        if existing is not None and self.overwrite == "never":
            raise NotPlaced("the target already holds an entry at this path (see --overwrite)")
        return existing

    def _finish_special(self, dir_fd: int, temp: str, name: str, entry: Entry, *, chmod: bool) -> None:
        try:
            if chmod:
                # never a link here: the node was just made under a name nobody else knows
                os.chmod(temp, int(entry.get("mode", 0o600)) & 0o7777, dir_fd=dir_fd)
            _link_metadata(dir_fd, temp, entry, as_root=self.as_root)
        except BaseException:
            _discard(dir_fd, temp)
            raise
        self._put(dir_fd, temp, name)

    # -- creating and replacing ----------------------------------------------------------------

    def _create(self, dir_fd: int, make: Callable[[str], _T]) -> tuple[str, _T]:
        """Make something under a fresh temporary name in the directory; ``(name, result)``."""
        while True:
            temp = TEMP_PREFIX + secrets.token_hex(8)
            try:
                return temp, make(temp)
            except FileExistsError:
                continue

    def _put(self, dir_fd: int, temp: str, name: str) -> None:
        """Rename ``temp`` over ``name``; a directory in the way is removed first (never followed)."""
        try:
            existing = _lstat(dir_fd, name)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                if self.overwrite == "never":
                    raise NotPlaced("the target holds a directory at this path (see --overwrite)")
                shutil.rmtree(name, dir_fd=dir_fd)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _discard(dir_fd, temp)
            raise


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _file_fields(entry: Entry) -> tuple[int, str, list[bytes]]:
    try:
        size, sha256 = int(entry["size"]), str(entry["sha256"])
        return size, sha256, [bytes.fromhex(chunk) for chunk in entry.get("chunks", ())]
    except (KeyError, TypeError, ValueError):
        raise NotPlaced("the snapshot's entry for this file is malformed") from None


def _not_a_directory(exc: OSError) -> bool:
    return exc.errno in (errno.ENOTDIR, errno.ELOOP)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _kind_at(dir_fd: int, name: str) -> str:
    st = _lstat(dir_fd, name)
    kind = kind_of(st.st_mode) if st is not None else "nothing"
    return {"symlink": "symbolic link", "chardev": "device", "blockdev": "device"}.get(kind or "", kind or "file")


def _discard(dir_fd: int, temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp, dir_fd=dir_fd)


def apply_metadata(fd: int, entry: Entry, *, as_root: bool) -> None:
    """Owner (as root), mode and mtime through an open descriptor (no path lookup)."""
    if as_root:
        # unknown ids on this host: keep root ownership rather than fail the restore
        with contextlib.suppress(OSError):
            os.fchown(fd, int(entry.get("uid", -1)), int(entry.get("gid", -1)))
    os.fchmod(fd, int(entry.get("mode", 0o600)) & 0o7777)
    mtime = int(entry.get("mtime", 0))
    os.utime(fd, ns=(mtime, mtime))


def _link_metadata(dir_fd: int, name: str, entry: Entry, *, as_root: bool) -> None:
    """Owner and mtime of the entry itself, never of what a link points at."""
    if as_root:
        with contextlib.suppress(OSError):
            os.chown(name, int(entry.get("uid", -1)), int(entry.get("gid", -1)), dir_fd=dir_fd, follow_symlinks=False)
    mtime = int(entry.get("mtime", 0))
    os.utime(name, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
