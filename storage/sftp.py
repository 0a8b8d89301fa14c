"""A repository on an SFTP server (OpenSSH), through paramiko.

URL: ``sftp://USER@HOST:PORT/ABSOLUTE/PATH[?known_hosts=FILE&key=FILE]``.

* Host keys are checked strictly and authentication uses a key file or the agent
  (:mod:`storage.ssh`): an unknown or changed host key is exit 3, never trust-on-first-use.
* Throughput: one SSH connection per concurrent transfer (paramiko's transport is one
  thread per connection), 128 KiB SFTP requests, pipelined writes and prefetched reads.
* Atomicity: an object is written to a dot-named temporary file, closed and renamed into
  place — ``posix-rename@openssh.com`` to replace, the plain SFTP rename (OpenSSH implements
  it with ``link()``, which fails on an existing name) for create-if-absent. Readers never
  see a partial object. paramiko has no public call for OpenSSH's ``fsync@openssh.com``, so
  the server's own filesystem decides when the bytes reach its disk: a crash of the SFTP
  server within its write-back window can lose or shorten the newest objects. The next
  replication copies a missing or shortened object again; ``verify-offsite`` finds any other
  damage by the object's name and ``replicate --repair`` puts it right.
"""

from __future__ import annotations

import contextlib
import errno
import queue
import secrets
import stat as stat_mod
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, unquote

from dc.errors import N_, UsageError
from dc.failpoint import failpoint
from storage.backend import Capabilities, ObjectInfo, check_key
from storage.errors import LocationMissing, ObjectNotFound, PermanentStorageError, StorageError
from storage.ssh import SftpSession, SshTarget, key_file, known_hosts_file, open_sftp
from storage.urlparts import split_url

REQUEST = 128 * 1024
_READ_PIECE = 4 * 1024 * 1024


@dataclass(frozen=True)
class SftpLocation:
    user: str
    host: str
    port: int
    path: str
    known_hosts: str | None = None
    key_file: str | None = None

    @property
    def url(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{self.path}"

    @property
    def host_label(self) -> str:
        return SshTarget(self.user, self.host, self.port).label


def parse_sftp_url(url: str) -> SftpLocation:
    parsed = split_url(url)
    if parsed.scheme != "sftp":
        raise UsageError(N_("not an sftp:// URL: {url}"), url=url)
    if parsed.password:
        raise UsageError(N_("passwords do not belong in an sftp:// URL: use a key file or the SSH agent"))
    if not parsed.username or not parsed.hostname:
        raise UsageError(N_("sftp URL needs a user and a host: {url} (use sftp://USER@HOST:PORT/PATH)"), url=url)
    path = unquote(parsed.path)
    if not path.startswith("/") or path == "/":
        raise UsageError(N_("sftp URL needs an absolute repository path below /: {url}"), url=url)
    query = parse_qs(parsed.query)
    unknown = set(query) - {"known_hosts", "key"}
    if unknown:
        raise UsageError(
            N_("unknown sftp URL parameter(s) {unknown} (known: known_hosts, key)"), unknown=", ".join(sorted(unknown))
        )
    try:
        port = parsed.port or 22
    except ValueError:
        raise UsageError(N_("invalid port in {url}"), url=url) from None

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    return SftpLocation(parsed.username, parsed.hostname, port, path.rstrip("/"), one("known_hosts"), one("key"))


class SftpBackend:
    """Thread-safe: each thread borrows its own connection from a pool."""

    def __init__(
        self, location: SftpLocation, *, known_hosts: str | None = None, create: bool = False, timeout: float = 15.0
    ) -> None:
        self.location = location
        self._target = SshTarget(location.user, location.host, location.port)
        self._known_hosts = known_hosts_file(self._target, known_hosts, location.known_hosts)
        self._key_file = key_file(location.key_file)
        self._timeout = timeout
        self._idle: queue.SimpleQueue[SftpSession] = queue.SimpleQueue()
        self._all: list[SftpSession] = []
        self._lock = threading.Lock()
        self._dirs: set[str] = set()
        try:
            with self._borrow() as conn:  # connect now: bad host keys and credentials fail at open
                self._check_root(conn, create)
        except BaseException:
            self.close()  # nobody else can: the caller never gets this backend
            raise

    def _check_root(self, conn: SftpSession, create: bool) -> None:
        root = self.location.path
        if create:
            self._makedirs(conn, root)
            return
        try:
            if not stat_mod.S_ISDIR(conn.sftp.stat(root).st_mode):
                raise LocationMissing(N_("no bcpctl repository at {url}: it is a file, not a directory"), url=self.url)
        except FileNotFoundError:
            raise LocationMissing(
                N_("no bcpctl repository at {url}: the directory does not exist"), url=self.url
            ) from None

    # -- connections ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(object_lock=False, cheap_ranges=False)

    def _connect(self) -> SftpSession:
        conn = open_sftp(self._target, self._known_hosts, self._key_file, self._timeout)
        with self._lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[SftpSession]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        except (EOFError, OSError, _ssh_exception()) as exc:
            if _connection_broken(exc) or not _alive(conn):
                # A broken connection is dropped, never reused; the next borrow reconnects.
                self._discard(conn)
                raise StorageError(
                    N_("SFTP connection to {host_label} lost ({error_type})"),
                    host_label=self.location.host_label,
                    error_type=type(exc).__name__,
                ) from None
            self._idle.put(conn)
            raise StorageError(
                N_("SFTP server {host_label} refused an operation: {exc}"), host_label=self.location.host_label, exc=exc
            ) from None
        except BaseException:
            self._idle.put(conn)
            raise
        else:
            self._idle.put(conn)

    def _discard(self, conn: SftpSession) -> None:
        conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    # -- paths ----------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self.location.path}/{check_key(key)}"

    def _makedirs(self, conn: SftpSession, path: str) -> None:
        if path in self._dirs:
            return
        parts = path.strip("/").split("/")
        current = ""
        for part in parts:
            current += "/" + part
            if current in self._dirs:
                continue
            try:
                conn.sftp.mkdir(current, 0o700)
            except OSError:
                try:
                    if not stat_mod.S_ISDIR(conn.sftp.stat(current).st_mode):
                        raise StorageError(
                            N_("{current} on {host} is not a directory"), current=current, host=self.location.host
                        ) from None
                except FileNotFoundError:
                    raise StorageError(
                        N_("cannot create {current} on {host}"), current=current, host=self.location.host
                    ) from None
            self._dirs.add(current)

    # -- the Backend protocol -------------------------------------------------------------

    def _write_temp(self, conn: SftpSession, path: str, data: bytes | bytearray | memoryview) -> str:
        directory, name = path.rsplit("/", 1)
        tmp = f"{directory}/.{name}.tmp-{secrets.token_hex(6)}"
        try:
            handle = conn.sftp.open(tmp, "wb")
        except FileNotFoundError:
            self._makedirs(conn, directory)
            handle = conn.sftp.open(tmp, "wb")
        try:
            with handle as f:
                f.MAX_REQUEST_SIZE = REQUEST
                f.set_pipelined(True)
                view = memoryview(data)
                half = len(view) // 2
                f.write(view[:half])
                failpoint("storage.save.mid-object")
                f.write(view[half:])
                f.flush()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.sftp.remove(tmp)
            raise
        return tmp

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        path = self._path(key)
        with self._borrow() as conn:
            tmp = self._write_temp(conn, path, data)
            try:
                conn.sftp.posix_rename(tmp, path)
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.sftp.remove(tmp)
                raise

    def save_new(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        with self._borrow() as conn:
            tmp = self._write_temp(conn, path, data)
            try:
                conn.sftp.rename(tmp, path)  # link()-based: fails if path exists
            except OSError:
                with contextlib.suppress(Exception):
                    conn.sftp.remove(tmp)
                try:
                    conn.sftp.stat(path)
                except FileNotFoundError:
                    raise StorageError(N_("cannot create {key} in {url}"), key=key, url=self.url) from None
                return False
            return True

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(key)
        with self._borrow() as conn:
            try:
                f = conn.sftp.open(path, "rb")
            except FileNotFoundError:
                raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url) from None
            with f:
                f.MAX_REQUEST_SIZE = REQUEST
                size = f.stat().st_size
                if length is None:
                    length = max(size - offset, 0)
                if offset + length > size:
                    raise PermanentStorageError(
                        N_("object {key} in {url} is shorter than expected ({offset}+{length} bytes requested)"),
                        key=key,
                        url=self.url,
                        offset=offset,
                        length=length,
                    )
                if length == 0:
                    return b""
                f.seek(offset)
                f.prefetch(offset + length)
                pieces = []
                remaining = length
                while remaining:
                    piece = f.read(min(remaining, _READ_PIECE))
                    if not piece:
                        break
                    pieces.append(piece)
                    remaining -= len(piece)
        data = b"".join(pieces)
        if len(data) != length:
            raise StorageError(N_("object {key} in {url} was cut short while reading"), key=key, url=self.url)
        return data

    def stat(self, key: str) -> ObjectInfo:
        with self._borrow() as conn:
            try:
                st = conn.sftp.stat(self._path(key))
            except FileNotFoundError:
                raise ObjectNotFound(N_("object {key} not found in {url}"), key=key, url=self.url) from None
        return ObjectInfo(key, int(st.st_size or 0), float(st.st_mtime or 0))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        pending = [start]
        while pending:
            rel = pending.pop()
            directory = f"{self.location.path}/{rel}".rstrip("/")
            with self._borrow() as conn:
                try:
                    entries = conn.sftp.listdir_attr(directory)
                except FileNotFoundError:
                    continue
            for entry in entries:
                name = entry.filename
                if name.startswith("."):
                    continue  # temporary files of writes in progress
                key = f"{rel}/{name}" if rel else name
                if stat_mod.S_ISDIR(entry.st_mode or 0):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        pending.append(key)
                    continue
                if stat_mod.S_IFMT(entry.st_mode or 0) in _NOT_OBJECTS:
                    continue  # a FIFO or device: opening it would hang the server's reader
                if key.startswith(prefix):
                    yield ObjectInfo(key, int(entry.st_size or 0), float(entry.st_mtime or 0))

    def remove(self, key: str) -> None:
        with self._borrow() as conn, contextlib.suppress(FileNotFoundError):
            conn.sftp.remove(self._path(key))


_NOT_OBJECTS = (stat_mod.S_IFIFO, stat_mod.S_IFCHR, stat_mod.S_IFBLK, stat_mod.S_IFSOCK)


def _connection_broken(exc: BaseException) -> bool:
    """Whether ``exc`` means the SSH connection is gone (not just a refused SFTP request).

    paramiko turns SFTP status replies into ``OSError`` with ``ENOENT``/``EACCES`` or no errno;
    everything else (EOF, SSH errors, timeouts, socket errnos) means the transport is broken.
    """
    if isinstance(exc, EOFError | TimeoutError | ConnectionError) or not isinstance(exc, OSError):
        return True
    return exc.errno not in (None, errno.ENOENT, errno.EACCES, errno.EPERM)


def _alive(conn: SftpSession) -> bool:
    transport = conn.client.get_transport()
    return transport is not None and transport.is_active()


def _ssh_exception() -> type[Exception]:
    import paramiko

    return paramiko.SSHException
