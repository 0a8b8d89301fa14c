"""The file list of a snapshot: JSON lines in path order, cut into metadata blobs.

Entries are written in depth-first order with siblings sorted by name, so the list is sorted
by path components. That lets an incremental backup walk the file system and its parent's
list side by side (a merge join) in constant memory, and lets restore stream any size of
tree. Blob boundaries are content-defined at entry granularity (a cut after an entry whose
seeded CRC hits a mask), so one changed file changes one metadata blob, not all that follow.
"""

from __future__ import annotations

import base64
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from backup.errors import CorruptObject
from dc.errors import N_

Entry = dict[str, Any]

_MIN_BLOB = 16 * 1024
_MAX_BLOB = 1024 * 1024
_CUT_MASK = 0x3F


def path_key(path: str) -> tuple[str, ...]:
    """The sort key of the tree order: path components compared one by one."""
    return tuple(path.split("/"))


#: Entry types. ``hardlink`` names (in ``link``) the earlier entry of the same inode (a file, link or
#: node), which carries the content; ``chardev`` and ``blockdev`` carry ``major`` and ``minor``.
TYPES = frozenset({"file", "dir", "symlink", "hardlink", "fifo", "socket", "chardev", "blockdev"})
#: Fields holding file-system bytes (names, link targets): os hands them over as str with
#: undecodable bytes surrogate-escaped, which JSON cannot carry, so such a value is stored
#: as ``<field>_b64`` of its exact bytes instead.
_BYTES_FIELDS = ("path", "target", "link")


def encode_entry(entry: Entry) -> bytes:
    for name in _BYTES_FIELDS:
        value = entry.get(name)
        if value is None:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            entry = {k: v for k, v in entry.items() if k != name}
            entry[f"{name}_b64"] = base64.b64encode(os.fsencode(value)).decode()
    return orjson.dumps(entry) + b"\n"


def decode_entry(line: bytes, where: str) -> Entry:
    try:
        entry = orjson.loads(line)
        if not isinstance(entry, dict):
            raise ValueError("entry is not an object")
        for name in _BYTES_FIELDS:
            if f"{name}_b64" in entry:
                entry[name] = os.fsdecode(base64.b64decode(entry.pop(f"{name}_b64"), validate=True))
        if not isinstance(entry.get("path"), str) or entry.get("type") not in TYPES:
            raise ValueError("entry without a path or with an unknown type")
        if entry["type"] == "symlink" and not isinstance(entry.get("target"), str):
            raise ValueError("symlink without a target")
        if entry["type"] == "hardlink" and not isinstance(entry.get("link"), str):
            raise ValueError("hard link without the path it links to")
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise CorruptObject(N_("{where}: malformed tree entry ({exc})"), where=where, exc=exc) from None
    return entry


class TreeWriter:
    """Collects entries and hands finished metadata blobs to ``store`` (returns the blob id)."""

    def __init__(self, store: Callable[[bytes], bytes], seed: int) -> None:
        self._store = store
        self._seed = seed & 0xFFFFFFFF
        self._buffer = bytearray()
        self._ids: list[str] = []
        self.count = 0

    def add(self, entry: Entry) -> None:
        line = encode_entry(entry)
        self._buffer += line
        self.count += 1
        if len(self._buffer) >= _MAX_BLOB or (
            len(self._buffer) >= _MIN_BLOB and zlib.crc32(line, self._seed) & _CUT_MASK == 0
        ):
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._ids.append(self._store(bytes(self._buffer)).hex())
            self._buffer.clear()

    def finish(self) -> tuple[str, ...]:
        self._flush()
        return tuple(self._ids)


def iter_tree(read_blob: Callable[[bytes], bytes], tree: Iterable[str]) -> Iterator[Entry]:
    """Every entry of a snapshot's tree, in order, one metadata blob in memory at a time."""
    for blob_id in tree:
        data = read_blob(bytes.fromhex(blob_id))
        if data and not data.endswith(b"\n"):
            raise CorruptObject(N_("tree blob {blob_id} is truncated"), blob_id=blob_id[:16])
        for line in data.splitlines():
            yield decode_entry(line, f"tree blob {blob_id[:16]}")


_KINDS = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "chardev"),
    (stat.S_ISBLK, "blockdev"),
)


def kind_of(mode: int) -> str | None:
    """The entry type of a file-system object from its ``st_mode`` (``None``: none this system knows)."""
    return next((kind for test, kind in _KINDS if test(mode)), None)


def entry_from_stat(path: str, st: os.stat_result) -> Entry:
    """The metadata part of an entry; content fields (sha256, chunks) are added by the archiver."""
    kind = kind_of(st.st_mode)
    if kind is None:
        raise ValueError(f"{path!r}: no entry type for mode {st.st_mode:o}")
    entry: Entry = {
        "path": path,
        "type": kind,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns,
    }
    if kind == "file":
        entry.update(size=st.st_size, ctime=st.st_ctime_ns, ino=st.st_ino)
    elif kind in ("chardev", "blockdev"):
        entry.update(major=os.major(st.st_rdev), minor=os.minor(st.st_rdev))
    return entry


def unchanged(old: Entry | None, new: Entry) -> bool:
    """restic's rule: a file whose size, mtime, ctime and inode match was not modified."""
    return (
        old is not None
        and old["type"] == "file"
        and new["type"] == "file"
        and ("sha256" in old or "blake3" in old)
        and all(old.get(k) == new.get(k) for k in ("size", "mtime", "ctime", "ino"))
    )
