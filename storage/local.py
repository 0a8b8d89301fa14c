"""The local directory backend, and the plain paths and ``file://`` URLs that name one.

The one backend with cheap ranged reads (``pread`` on packs kept open): restore reads blobs in
place from it (``load_into``) instead of fetching whole packs.

Anyone who can write the repository directory (or a careless ``cp -a``) can leave a FIFO, a
device or a directory where an object belongs. Objects are opened ``O_NONBLOCK`` and judged by
``fstat`` of what was opened: anything but a regular file is :class:`NotARegularFile`, a
damaged object the caller names and skips — never a read that waits for ever.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat as stat_mod
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

from dc.errors import N_, Message, UsageError, os_reason
from dc.failpoint import failpoint
from storage.backend import Capabilities, ObjectInfo, check_key
from storage.errors import LocationMissing, NotARegularFile, ObjectNotFound, StorageError
from storage.urlparts import split_url

_IMMUTABLE = ("data/", "meta/")
#: the temporary name an object is written under until it is whole (``.{name}.tmp-{pid}-{ns}``)
_TEMPORARY = re.compile(r"^\.[^/]+\.tmp-[0-9]+-[0-9]+$")
#: a temporary younger than this is never judged: its writer may have created it and not yet locked it
LEFTOVER_AGE = 60.0


def is_leftover(name: str, age_seconds: float, writer_holds_lock: bool) -> bool:
    """Whether ``name`` is a temporary no writer will ever finish (pure).

    A writer holds an exclusive lock on its temporary from just after creating it until the
    rename; the kernel drops it when the writer dies (a killed ``wal push``), so an unlocked
    temporary older than :data:`LEFTOVER_AGE` has no one behind it.
    """
    return bool(_TEMPORARY.fullmatch(name)) and age_seconds >= LEFTOVER_AGE and not writer_holds_lock


class LocalBackend:
    """A repository in a local directory (or any mounted filesystem).

    Objects are written to a temporary name, fsynced, renamed into place and the directory is
    fsynced, so a crash leaves either the old state or the complete object.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = Path(root).absolute()
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                # A path through a file, no permission, a read-only mount: the invocation is wrong.
                wrong = exc.errno in (errno.EEXIST, errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS)
                error = UsageError if wrong else StorageError
                raise error(
                    N_("cannot create repository directory {root}: {strerror}"), root=self.root, strerror=os_reason(exc)
                ) from None
        # Packs are immutable: keep recently read ones open (a restore reads thousands of blobs).
        self._pack_fds: OrderedDict[str, int] = OrderedDict()
        self._fd_lock = threading.Lock()
        _check_root(self.root)

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(object_lock=False, cheap_ranges=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
        try:
            fd = self._open_new(tmp)
        except FileNotFoundError:
            self._make_dirs(path.parent)
            fd = self._open_new(tmp)
        try:
            view = memoryview(data)
            half = len(view) // 2
            _write_all(fd, view[:half])
            failpoint("storage.save.mid-object")
            _write_all(fd, view[half:])
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents, each fsynced into its parent: an object
        saved (and fsynced) into a directory whose own entry was never made durable would be
        lost with it at a power cut (a WAL segment PostgreSQL has already recycled)."""
        missing = []
        while not directory.exists() and directory != self.root:
            missing.append(directory)
            directory = directory.parent
        for made in reversed(missing):
            made.mkdir(exist_ok=True)
            _fsync_dir(made.parent)

    def save_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        self._make_dirs(path.parent)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
        fd = self._open_new(tmp)
        try:
            _write_all(fd, memoryview(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() fails if the target exists: an atomic create-if-absent on POSIX filesystems.
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        _fsync_dir(path.parent)
        return True

    @staticmethod
    def _open_new(path: Path) -> int:
        """A new temporary, locked for as long as this writer lives (:func:`is_leftover`)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # just created with O_EXCL: nobody else has it
        except OSError as exc:
            # a filesystem without locks: the write goes on, and no cleaner ever takes it for a leftover
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
        return fd

    def remove_leftovers(self, prefix: str = "", *, now: float | None = None) -> list[str]:
        """Remove the temporaries under ``prefix`` that killed writers left; return their paths.

        A temporary a running writer holds is kept (its lock is taken), and so is any dot-file
        that is not one of this backend's temporaries.
        """
        now = time.time() if now is None else now
        start = self.root / prefix.rstrip("/") if prefix else self.root
        removed = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for name in filenames:
                if not _TEMPORARY.fullmatch(name):
                    continue
                path = os.path.join(dirpath, name)
                if self._remove_leftover(path, now):
                    removed.append(os.path.relpath(path, self.root))
        return removed

    @staticmethod
    def _remove_leftover(path: str, now: float) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return False  # gone meanwhile (renamed into place), or not ours to open
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except OSError:  # held by a live writer, or a filesystem without locks: keep it
                held = True
            if not is_leftover(os.path.basename(path), now - st.st_mtime, held):
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return True
        finally:
            os.close(fd)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            if length is not None and key.startswith(_IMMUTABLE):
                fd = self._pack_fd(key)
                data = os.pread(fd, length, offset) if length > 0 else b""
            else:
                fd = self._open_object(key)
                try:
                    if length is None:
                        length = os.fstat(fd).st_size - offset
                    data = os.pread(fd, length, offset) if length > 0 else b""
                finally:
                    os.close(fd)
        except OSError as exc:  # a disk error under this object: its own failure, worded for the operator
            raise StorageError(
                N_("cannot read {key} in {url}: {strerror}"), key=key, url=self.url, strerror=os_reason(exc)
            ) from None
        if len(data) != length:
            raise StorageError(
                N_("object {key} is shorter than expected ({offset}+{length} bytes requested)"),
                key=key,
                offset=offset,
                length=length,
            )
        return data

    def load_into(self, key: str, offset: int, view: memoryview) -> None:
        """Fill ``view`` from a pack at ``offset`` (restore's reused buffers: no allocation per blob)."""
        if not key.startswith(_IMMUTABLE):
            raise UsageError(N_("load_into reads packs only, not {key}"), key=key)
        got = os.preadv(self._pack_fd(key), [view], offset) if len(view) else 0
        if got != len(view):
            raise StorageError(
                N_("object {key} is shorter than expected ({offset}+{n_view} bytes requested)"),
                key=key,
                offset=offset,
                n_view=len(view),
            )

    def _pack_fd(self, key: str) -> int:
        with self._fd_lock:
            fd = self._pack_fds.get(key)
            if fd is not None:
                self._pack_fds.move_to_end(key)
                return fd
            fd = self._open_object(key)
            self._pack_fds[key] = fd
            if len(self._pack_fds) > 64:
                os.close(self._pack_fds.popitem(last=False)[1])
            return fd

    def _open_object(self, key: str) -> int:
        """A descriptor of the regular file at ``key``; never blocks on a FIFO or a device."""
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url) from None
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a socket, or a device without its driver
                raise NotARegularFile(
                    N_("object {key} in {url} is not a regular file: stray or planted"), key=key, url=self.url
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):  # the invocation's user, not the storage, is wrong
                raise UsageError(
                    N_("cannot open object {key} in {url}: permission denied"), key=key, url=self.url
                ) from None
            raise StorageError(
                N_("cannot open object {key} in {url}: {strerror}"), key=key, url=self.url, strerror=os_reason(exc)
            ) from None
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            os.close(fd)
            raise
        if not stat_mod.S_ISREG(mode):
            os.close(fd)
            raise NotARegularFile(
                N_("object {key} in {url} is not a regular file ({mode}): stray or planted, remove it"),
                key=key,
                url=self.url,
                mode=_kind(mode),
            )
        return fd

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url) from None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key, st in self._entries(prefix):
            if stat_mod.S_ISREG(st.st_mode):
                yield ObjectInfo(key, st.st_size, st.st_mtime)

    def strays(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        """Entries that are not regular files (:class:`storage.capabilities.StrayEntries`)."""
        for key, st in self._entries(prefix):
            if not stat_mod.S_ISREG(st.st_mode):
                yield key, _kind(st.st_mode)

    def _entries(self, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith("."):
                    continue  # temporary files of writes in progress
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))  # a link to a FIFO is a FIFO
                except FileNotFoundError:
                    continue  # removed while listing, or a dangling link
                yield key, st

    def remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def close(self) -> None:
        with self._fd_lock:
            for fd in self._pack_fds.values():
                os.close(fd)
            self._pack_fds.clear()


#: what a non-file entry is, for a line that names it (a Message: the CLI shows it in the operator's language)
_KINDS = (
    (stat_mod.S_ISFIFO, Message(N_("a FIFO"))),
    (stat_mod.S_ISDIR, Message(N_("a directory"))),
    (stat_mod.S_ISSOCK, Message(N_("a socket"))),
    (stat_mod.S_ISCHR, Message(N_("a device"))),
    (stat_mod.S_ISBLK, Message(N_("a device"))),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), Message(N_("not a file")))


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _check_root(root: Path) -> None:
    """A missing repository is a usage error (exit 2) whatever the URL form, like an empty directory."""
    try:
        st = os.stat(root)
    except (FileNotFoundError, NotADirectoryError):
        raise LocationMissing(
            N_("no bcpctl repository at file://{root}: the directory does not exist"), root=root
        ) from None
    except PermissionError:
        raise LocationMissing(
            N_("cannot reach the repository directory {root}: permission denied"), root=root
        ) from None
    if not stat_mod.S_ISDIR(st.st_mode):
        raise LocationMissing(N_("no bcpctl repository at file://{root}: it is a file, not a directory"), root=root)
    if not os.access(root, os.R_OK | os.X_OK):
        raise LocationMissing(N_("cannot read the repository directory {root}: permission denied"), root=root)


def local_backend_from_url(url: str, *, create: bool = False) -> LocalBackend | None:
    """A :class:`LocalBackend` for a plain path or ``file://`` URL; ``None`` for other schemes."""
    if not url.strip():
        raise UsageError(N_("the repository URL is empty (give --repo PATH or set BCPCTL_REPO)"))
    if any(not c.isprintable() for c in url):
        raise UsageError(N_("the repository URL contains control characters or NUL"))
    if "://" not in url:
        return LocalBackend(url, create=create)
    parsed = split_url(url)
    if parsed.scheme != "file":
        return None
    if parsed.netloc not in ("", "localhost"):
        raise UsageError(N_("file URL with a host is not supported: {url}"), url=url)
    return LocalBackend(unquote(parsed.path), create=create)
