"""Snapshots as a read-only file system (``bcpctl mount``), through FUSE (mfusepy, a
maintained ctypes binding of libfuse 2 and 3).

One snapshot is mounted as its tree; ``--all`` mounts a directory per system (or source)
holding a directory per snapshot, named by its time (UTC) and short id. Trees are read once
when the mount starts; file contents are read blob by blob as programs read them, each
blob authenticated and checked against its keyed id, never written anywhere. Every call
that would change something fails with EROFS. Names are the snapshot's exact bytes.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from backup.errors import CorruptObject
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.tree import Entry, iter_tree
from dc.errors import N_, UsageError

_MODES = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
}


@dataclass
class _Node:
    entry: Entry
    children: dict[str, _Node] = field(default_factory=dict)
    #: a file's chunk offsets, filled in on first read
    offsets: list[int] | None = None


def _dir(name_time: int = 0) -> _Node:
    return _Node({"type": "dir", "mode": 0o555, "mtime": name_time})


def snapshot_dir_name(snapshot: Snapshot) -> str:
    return f"{snapshot.time.strftime('%Y-%m-%dT%H:%M:%SZ')}_{snapshot.short_id}"


def build_tree(repo: Repository, snapshots: Sequence[Snapshot], *, each_in_own_dir: bool) -> _Node:
    """The directory tree to serve: one snapshot's tree, or one directory per group and snapshot."""
    root = _dir()
    for snapshot in snapshots:
        base = root
        if each_in_own_dir:
            group = base.children.setdefault(snapshot.group.replace("/", "_"), _dir())
            when = int(snapshot.time.timestamp() * 1e9)
            base = group.children.setdefault(snapshot_dir_name(snapshot), _dir(when))
        by_path: dict[str, _Node] = {"": base}
        for entry in iter_tree(repo.read_blob, snapshot.tree):
            parent = by_path.get(posixpath.dirname(entry["path"]))
            if parent is None or parent.entry["type"] != "dir":
                continue  # restore refuses such a tree; here it is simply not shown
            if entry["type"] == "hardlink":
                first = by_path.get(entry["link"])
                if first is None:
                    continue
                node = first  # the same node: the same content, and st_nlink counts it
                first.entry = {**first.entry, "nlink": int(first.entry.get("nlink", 1)) + 1}
            else:
                node = _Node(entry)
            parent.children[posixpath.basename(entry["path"])] = node
            by_path[entry["path"]] = node
    return root


class SnapshotFS:
    """The FUSE operations (mfusepy's ``Operations`` protocol): read-only, no handles kept."""

    #: times handed to libfuse in nanoseconds, as the tree stores them
    use_ns = True

    def __init__(self, repo: Repository, root: _Node, uid: int, gid: int) -> None:
        self.repo = repo
        self.root = root
        self.uid, self.gid = uid, gid
        self._lock = threading.Lock()  # one repository, one reader at a time
        self._last: tuple[bytes, bytes] | None = None

    def _node(self, path: str) -> _Node:
        node = self.root
        for part in path.strip("/").split("/") if path.strip("/") else []:
            child = node.children.get(part)
            if child is None:
                raise _error(errno.ENOENT)
            node = child
        return node

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        entry = self._node(path).entry
        kind = entry["type"]
        mtime = int(entry.get("mtime", 0) or 0)
        attrs: dict[str, Any] = {
            # read-only: no write bit, whatever the snapshot recorded; no setuid/setgid bit either:
            # every file here belongs to whoever mounted, so a user's own setuid program would
            # become that user's (root's) on any copy taken with its mode (cp -a)
            "st_mode": _MODES[kind] | (int(entry.get("mode", 0o555)) & 0o1555),
            "st_nlink": int(entry.get("nlink", 1)) if kind != "dir" else 2,
            "st_size": int(entry.get("size", 0)) if kind == "file" else len(os.fsencode(entry.get("target", ""))),
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_mtime": mtime,
            "st_ctime": mtime,
            "st_atime": mtime,
        }
        if kind in ("chardev", "blockdev"):
            attrs["st_rdev"] = os.makedev(int(entry.get("major", 0)), int(entry.get("minor", 0)))
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        node = self._node(path)
        if node.entry["type"] != "dir":
            raise _error(errno.ENOTDIR)
        return [".", "..", *node.children]

    def readlink(self, path: str) -> str:
        entry = self._node(path).entry
        if entry["type"] != "symlink":
            raise _error(errno.EINVAL)
        return str(entry["target"])

    def open(self, path: str, flags: int) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_CREAT):
            raise _error(errno.EROFS)
        if self._node(path).entry["type"] != "file":
            raise _error(errno.EACCES)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        node = self._node(path)
        chunks = [bytes.fromhex(c) for c in node.entry.get("chunks", ())]
        with self._lock:
            if node.offsets is None:
                node.offsets = self._offsets(chunks)
            out = bytearray()
            index = bisect_right(node.offsets, offset) - 1
            while index >= 0 and index < len(chunks) and len(out) < size:
                data = self._blob(chunks[index])
                start = max(0, offset + len(out) - node.offsets[index])
                out += data[start : start + size - len(out)]
                index += 1
            return bytes(out)

    def _offsets(self, chunks: list[bytes]) -> list[int]:
        offsets, at = [], 0
        for chunk_id in chunks:
            offsets.append(at)
            copies = self.repo.cache.locations(chunk_id)
            if not copies:
                raise _error(errno.EIO)
            at += copies[0].raw_length
        return offsets

    def _blob(self, chunk_id: bytes) -> bytes:
        if self._last is not None and self._last[0] == chunk_id:
            return self._last[1]
        try:
            data = self.repo.read_blob(chunk_id)
        except CorruptObject:
            raise _error(errno.EIO) from None
        self._last = (chunk_id, data)
        return data

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

    # everything that would change the tree
    def _refuse(self, *args: Any) -> Any:
        raise _error(errno.EROFS)

    chmod = chown = create = mkdir = mknod = rename = rmdir = symlink = truncate = unlink = utimens = write = _refuse
    link = setxattr = removexattr = _refuse


def _error(code: int) -> OSError:
    from mfusepy import FuseOSError

    return FuseOSError(code)


def check_fuse(device: str = "/dev/fuse") -> None:
    """Refuse a mount where FUSE cannot work, in one line saying why (exit 2)."""
    if not os.path.exists(device):
        raise UsageError(
            N_("mount needs FUSE, and {device} does not exist here (load the fuse module, or run with it)"),
            device=device,
        )
    try:
        import mfusepy  # noqa: F401  (loads libfuse)
    except (ImportError, OSError) as exc:
        raise UsageError(N_("mount needs libfuse (apt-get install fuse3 or libfuse2): {exc}"), exc=exc) from None


def check_mountpoint(mountpoint: str) -> None:
    """An existing empty directory, or one line saying why not (exit 2): a mount over a
    directory with contents would hide them until unmounted."""
    if not os.path.isdir(mountpoint):
        raise UsageError(N_("mount point {mountpoint} is not a directory"), mountpoint=mountpoint)
    if os.listdir(mountpoint):
        raise UsageError(N_("mount point {mountpoint} is not empty"), mountpoint=mountpoint)


def serve(repo: Repository, snapshots: Sequence[Snapshot], mountpoint: str, *, each_in_own_dir: bool) -> None:
    """Mount and serve until unmounted (``umount``/``fusermount -u``) or interrupted."""
    check_fuse()
    check_mountpoint(mountpoint)
    from mfusepy import FUSE

    root = build_tree(repo, snapshots, each_in_own_dir=each_in_own_dir)
    fs = SnapshotFS(repo, root, os.getuid(), os.getgid())
    # nosuid/nodev said outright, not left to libfuse's defaults: a device node of the snapshot
    # must never open the host's device of that number
    FUSE(
        fs,
        mountpoint,
        foreground=True,
        nothreads=True,
        ro=True,
        nosuid=True,
        nodev=True,
        fsname="bcpctl",
        subtype="bcpctl",
    )
