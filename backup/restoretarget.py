"""The restore target: every entry placed beneath the target's directory descriptor.

Nothing is ever written through what the target already holds. Paths are resolved one
component at a time from the target's descriptor, each directory opened with
``O_NOFOLLOW | O_DIRECTORY`` (Python's standard library has no ``openat2`` with
``RESOLVE_BENEATH``; names are checked for ``..`` and ``/`` before they get here, so a
component-wise walk that never follows a link stays beneath the target). Every entry is
created under a temporary name in its directory — a file only once its digest matched the
backup's record (:mod:`backup.filedigest`) — and renamed over its final name. ``rename`` replaces a directory entry,
it never opens what was there: a FIFO, a device, a link or a file with other names (a hard
link to a file outside the target) planted at that name is left untouched, merely unlinked
from the target.

What may be replaced is the overwrite policy's to say (restic's ``--overwrite``): ``never``
refuses a non-empty target before anything is written; ``if-changed`` leaves entries that
already match the snapshot (type, size and content hash) alone and replaces the rest;
``always`` replaces everything the snapshot holds. An entry of the wrong type (a directory
where a file goes) is removed — beneath the descriptor, never following a link, never on
another file system or holding a mount point (:mod:`backup.restoreclear`) — only under
``if-changed`` or ``always``.

Directory descriptors are cached for the whole restore, so a directory renamed out of the
target meanwhile keeps receiving the files written through its descriptor. Without
``openat2`` that cannot be prevented; what is guaranteed is that such files are never reported
restored: every :class:`Placed` names the directory (path and identity) it went through, and
the restore counts an entry only once :meth:`Target.still_beneath` found that very directory
at that path beneath the target, looked up afresh from the root without following links.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from backup.errors import CorruptObject, TargetNotEmpty
from backup.filedigest import digest_fd, hasher
from backup.filedigest import recorded as recorded_digest
from backup.restoreclear import Refused, remove_dir
from backup.restoredirs import Directories, Identity, NotPlaced, lstat_at
from backup.restoremeta import apply_metadata, link_metadata
from backup.tree import Entry
from dc.errors import N_, Message, UsageError, message_of, os_reason

_T = TypeVar("_T")

Overwrite = Literal["never", "if-changed", "always"]
OVERWRITE_POLICIES: tuple[Overwrite, ...] = ("never", "if-changed", "always")
ReadFn = Callable[[bytes], "bytes | memoryview"]
ProgressFn = Callable[[int], None]

#: names of entries being written; a restore killed midway leaves them, never a partial file
#: under its final name
TEMP_PREFIX = ".bcpctl-restore-"


@dataclass(frozen=True)
class Placed:
    """One entry placed: the directory it went through, and what the restore reports about it."""

    #: the directory's path beneath the target ("" for the target itself) and its identity
    directory: str
    identity: Identity
    written: int = 0
    #: False: it already matched and was left as it was (``if-changed``)
    fresh: bool = True
    #: why its owner or setuid/setgid bits were not kept (:mod:`backup.restoremeta`)
    note: str | None = None


def open_root(target: Path, overwrite: Overwrite) -> int:
    """The target's directory descriptor, the directory created if missing.

    Under ``never`` a target holding anything is refused here, before a single write. The
    path the operator gave is theirs and is followed as given; only what lies beneath it is
    resolved without following links.
    """
    if overwrite not in OVERWRITE_POLICIES:
        raise UsageError(
            N_("unknown overwrite policy {overwrite!r}; use one of {OVERWRITE_POLICIES}"),
            overwrite=overwrite,
            OVERWRITE_POLICIES=", ".join(OVERWRITE_POLICIES),
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(N_("restore target {target} is not a directory"), target=target) from None
    except OSError as exc:
        raise UsageError(
            N_("cannot use restore target {target}: {strerror}"), target=target, strerror=os_reason(exc)
        ) from None
    if overwrite == "never":
        with os.scandir(fd) as listing:
            occupied = next(listing, None) is not None
        if occupied:
            os.close(fd)
            raise TargetNotEmpty(
                N_(
                    "restore target {target} is not empty; nothing was written (--overwrite if-changed or "
                    "--overwrite always restores into it)"
                ),
                target=target,
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
        self.dirs = Directories(root_fd, overwrite)
        #: the target's file system: nothing on another one is ever removed
        self.device = self.dirs.identity("")[0]

    def view(self) -> Target:
        """Another handle on the same target with its own directory descriptors (for a thread)."""
        return Target(self.root_fd, self.overwrite, as_root=self.as_root)

    def close(self) -> None:
        """Close this handle's directory descriptors (not the root's)."""
        self.dirs.close()

    # -- directories ---------------------------------------------------------------------------

    def dir_fd(self, rel: str) -> int:
        """The directory ``rel`` beneath the root, created (0700) where missing; cached."""
        return self.dirs.dir_fd(rel)

    def identity(self, rel: str) -> Identity:
        return self.dirs.identity(rel)

    def still_beneath(self, rel: str, identity: Identity) -> bool:
        return self.dirs.still_beneath(rel, identity)

    def finish_dir(self, entry: Entry) -> str | None:
        """Owner, mode and times of a directory, once everything beneath it is written; a note as
        :func:`~backup.restoremeta.apply_metadata`. Never of a directory moved out of the target."""
        rel = entry["path"]
        fd = self.dir_fd(rel)
        if self.identity(rel) != self.dirs.first_identity(rel) or not self.still_beneath(rel, self.identity(rel)):
            raise NotPlaced(
                Message(N_("the directory was moved or replaced during the restore; what it holds is not restored"))
            )
        return apply_metadata(fd, entry, as_root=self.as_root)

    # -- files ---------------------------------------------------------------------------------

    def write_file(self, entry: Entry, read: ReadFn, progress: ProgressFn | None) -> Placed:
        """Restore one file (not written if it already matched under ``if-changed``).

        Raises :class:`NotPlaced` when its content cannot be read or differs from the record;
        nothing is then left under its name or a temporary one.
        """
        size, recorded, chunk_ids = _file_fields(entry)
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        where = self.identity(parent)
        existing = lstat_at(dir_fd, name)
        if existing is not None:
            if self.overwrite == "never":
                raise NotPlaced(Message(N_("the target already holds an entry at this path (see --overwrite)")))
            if self.overwrite == "if-changed":
                kept, note = self._keep_file(dir_fd, name, existing, entry, size, recorded)
                if kept:
                    if progress:
                        progress(size)
                    return Placed(parent, where, 0, False, note)
        temp, fd = self.create_temp_file(dir_fd)
        try:
            digest = hasher(recorded[0])
            written = 0
            for chunk_id in chunk_ids:
                try:
                    data = read(chunk_id)
                except CorruptObject as exc:
                    raise NotPlaced(message_of(exc)) from None
                # AES-GCM authenticated each blob; the file's digest checks the whole.
                digest.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(data)
                if progress:
                    progress(len(data))
            if written != size or digest.hexdigest() != recorded[1]:
                raise NotPlaced(DIFFERS)
            note = apply_metadata(fd, entry, as_root=self.as_root)
        except BaseException:
            os.close(fd)
            _discard(dir_fd, temp)
            raise
        os.close(fd)
        self._put(dir_fd, temp, name)
        return Placed(parent, where, written, True, note)

    def _keep_file(
        self, dir_fd: int, name: str, st: os.stat_result, entry: Entry, size: int, recorded: tuple[str, str]
    ) -> tuple[bool, str | None]:
        """Whether an existing file already is the snapshot's; its metadata is then set again
        (with the note of :func:`~backup.restoremeta.apply_metadata`).

        A file with other names is never kept: setting its mode or times would reach every
        name, some perhaps outside the target.
        """
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size != size:
            return False, None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return False, None
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or now.st_nlink != 1:
                return False, None
            if digest_fd(fd, recorded[0]) != (recorded[1], size):
                return False, None
            return True, apply_metadata(fd, entry, as_root=self.as_root)
        finally:
            os.close(fd)

    # -- links and special files ---------------------------------------------------------------

    def place_symlink(self, entry: Entry) -> Placed:
        """The link with its exact target bytes, never followed (not made again if it already matched)."""
        target = entry["target"]
        if not target or "\0" in target:
            raise NotPlaced(Message(N_("the snapshot records an impossible link target")))
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        where = self.identity(parent)
        existing = self._check_existing(dir_fd, name)
        if (
            existing is not None
            and self.overwrite == "if-changed"
            and stat.S_ISLNK(existing.st_mode)
            # a link with other names is never kept: its owner and times would reach them all
            and existing.st_nlink == 1
            and os.readlink(name, dir_fd=dir_fd) == target
        ):
            return Placed(
                parent, where, fresh=False, note=link_metadata(dir_fd, name, entry, as_root=self.as_root, chmod=False)
            )
        temp, _ = self._create(dir_fd, lambda temp: os.symlink(target, temp, dir_fd=dir_fd))
        return Placed(parent, where, note=self._finish_special(dir_fd, temp, name, entry, chmod=False))

    def place_node(self, entry: Entry, device: int | None) -> Placed:
        """A FIFO (``device`` None) or device node, made under a temporary name."""
        parent, name = split(entry["path"])
        dir_fd = self.dir_fd(parent)
        where = self.identity(parent)
        self._check_existing(dir_fd, name)
        if device is None:
            make = lambda temp: os.mkfifo(temp, 0o600, dir_fd=dir_fd)  # noqa: E731
        else:
            kind = stat.S_IFCHR if entry["type"] == "chardev" else stat.S_IFBLK
            make = lambda temp: os.mknod(temp, kind | 0o600, device, dir_fd=dir_fd)  # noqa: E731
        temp, _ = self._create(dir_fd, make)
        return Placed(parent, where, note=self._finish_special(dir_fd, temp, name, entry, chmod=True))

    def place_hardlink(self, entry: Entry) -> Placed:
        """Another name for an entry restored earlier (a file, link or node; the caller checks which)."""
        source_parent, source_name = split(entry["link"])
        # a copy: looking up the link's own directory may push the source's out of the cache
        source_fd = os.dup(self.dir_fd(source_parent))
        try:
            if stat.S_ISDIR(os.stat(source_name, dir_fd=source_fd, follow_symlinks=False).st_mode):
                raise NotPlaced(Message(N_("hard link to {link}, which is a directory"), link=repr(entry["link"])))
            parent, name = split(entry["path"])
            dir_fd = self.dir_fd(parent)
            where = self.identity(parent)
            self._check_existing(dir_fd, name)
            temp, _ = self._create(
                dir_fd,
                lambda temp: os.link(source_name, temp, src_dir_fd=source_fd, dst_dir_fd=dir_fd, follow_symlinks=False),
            )
        finally:
            os.close(source_fd)
        self._put(dir_fd, temp, name)
        return Placed(parent, where)

    def _check_existing(self, dir_fd: int, name: str) -> os.stat_result | None:
        existing = lstat_at(dir_fd, name)
        if existing is not None and self.overwrite == "never":
            raise NotPlaced(Message(N_("the target already holds an entry at this path (see --overwrite)")))
        return existing

    def _finish_special(self, dir_fd: int, temp: str, name: str, entry: Entry, *, chmod: bool) -> str | None:
        try:
            # never a link when chmod: the node was just made under a name nobody else knows
            note = link_metadata(dir_fd, temp, entry, as_root=self.as_root, chmod=chmod)
        except BaseException:
            _discard(dir_fd, temp)
            raise
        self._put(dir_fd, temp, name)
        return note

    # -- creating and replacing ----------------------------------------------------------------

    def create_temp_file(self, dir_fd: int, *, readable: bool = False) -> tuple[str, int]:
        """A new empty file (0600) under a fresh temporary name in the directory: ``(name, fd)``;
        ``readable``: opened for reading too (to be checked once written)."""
        flags = _NEW_FILE & ~os.O_WRONLY | os.O_RDWR if readable else _NEW_FILE
        return self._create(dir_fd, lambda temp: os.open(temp, flags, 0o600, dir_fd=dir_fd))

    def put_file(self, dir_fd: int, temp: str, name: str) -> None:
        """Give a verified temporary file its name (:meth:`_put`)."""
        self._put(dir_fd, temp, name)

    def _create(self, dir_fd: int, make: Callable[[str], _T]) -> tuple[str, _T]:
        """Make something under a fresh temporary name in the directory; ``(name, result)``."""
        while True:
            temp = TEMP_PREFIX + secrets.token_hex(8)
            try:
                return temp, make(temp)
            except FileExistsError:
                continue

    def _put(self, dir_fd: int, temp: str, name: str) -> None:
        """Rename ``temp`` over ``name``; a directory in the way is removed first (never followed,
        never on another file system, never holding a mount point)."""
        try:
            existing = lstat_at(dir_fd, name)
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                if self.overwrite == "never":
                    raise NotPlaced(Message(N_("the target holds a directory at this path (see --overwrite)")))
                try:
                    remove_dir(dir_fd, name, self.device)
                except Refused as exc:
                    raise NotPlaced(
                        Message(N_("a directory is in the way and was left as it is: {why}"), why=exc.args[0])
                    ) from None
            elif existing is not None and _same_inode(existing, lstat_at(dir_fd, temp)):
                # rename(2) of two names of one inode does nothing and leaves ``temp`` behind
                _discard(dir_fd, temp)
                return
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _discard(dir_fd, temp)
            raise


_MOVED = Message(N_("its directory was moved or replaced during the restore: it is not in the target"))
#: a file whose digest or chunk lengths are not those the backup recorded
DIFFERS = Message(N_("the restored bytes differ from the backup record"))


class Pending:
    """Entries placed through one directory descriptor, counted only once that directory is
    found again at its path beneath the target (:meth:`Target.still_beneath`); if it is not,
    each of them is reported as not restored instead."""

    def __init__(self) -> None:
        self._where: tuple[str, Identity] | None = None
        self._entries: list[tuple[str, Callable[[], None]]] = []

    def add(
        self, dest: Target, path: str, placed: Placed, count: Callable[[], None], fail: Callable[[str, str], None]
    ) -> None:
        where = (placed.directory, placed.identity)
        if where != self._where:
            self.settle(dest, fail)
            self._where = where
        self._entries.append((path, count))

    def settle(self, dest: Target, fail: Callable[[str, str], None]) -> None:
        if self._where is not None and self._entries:
            beneath = dest.still_beneath(*self._where)
            for path, count in self._entries:
                if beneath:
                    count()
                else:
                    fail(path, _MOVED)
        self._entries = []


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _file_fields(entry: Entry) -> tuple[int, tuple[str, str], list[bytes]]:
    """Size, ``(algorithm, digest)`` recorded, and chunk ids of a file entry."""
    try:
        size, digest = int(entry["size"]), recorded_digest(entry)
        return size, digest, [bytes.fromhex(chunk) for chunk in entry.get("chunks", ())]
    except (KeyError, TypeError, ValueError):
        raise NotPlaced(Message(N_("the snapshot's entry for this file is malformed"))) from None


def _same_inode(a: os.stat_result, b: os.stat_result | None) -> bool:
    return b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _discard(dir_fd: int, temp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp, dir_fd=dir_fd)
