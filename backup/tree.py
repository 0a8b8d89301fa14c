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

Entry = dict[str, Any]

_MIN_BLOB = 16 * 1024
_MAX_BLOB = 1024 * 1024
_CUT_MASK = 0x3F


def path_key(path: str) -> tuple[str, ...]:
    """The sort key of the tree order: path components compared one by one."""
    return tuple(path.split("/"))


def encode_entry(entry: Entry) -> bytes:
    path = entry["path"]
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        # A name that is not UTF-8 (surrogate-escaped by os): keep its exact bytes.
        entry = {k: v for k, v in entry.items() if k != "path"}
        entry["path_b64"] = base64.b64encode(os.fsencode(path)).decode()
    return orjson.dumps(entry) + b"\n"


def decode_entry(line: bytes, where: str) -> Entry:
    try:
        entry = orjson.loads(line)
        if not isinstance(entry, dict):
            raise ValueError("entry is not an object")
        if "path_b64" in entry:
            entry["path"] = os.fsdecode(base64.b64decode(entry.pop("path_b64"), validate=True))
        if not isinstance(entry.get("path"), str) or entry.get("type") not in ("file", "dir", "symlink"):
            raise ValueError("entry without a path or with an unknown type")
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise CorruptObject(f"{where}: malformed tree entry ({exc})") from None
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
            raise CorruptObject(f"tree blob {blob_id[:16]} is truncated")
        for line in data.splitlines():
            yield decode_entry(line, f"tree blob {blob_id[:16]}")


def entry_from_stat(path: str, st: os.stat_result) -> Entry:
    """The metadata part of an entry; content fields (sha256, chunks) are added by the archiver."""
    if stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    else:
        kind = "file"
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
    return entry


def unchanged(old: Entry | None, new: Entry) -> bool:
    """restic's rule: a file whose size, mtime, ctime and inode match was not modified."""
    return (
        old is not None
        and old["type"] == "file"
        and new["type"] == "file"
        and "sha256" in old
        and all(old.get(k) == new.get(k) for k in ("size", "mtime", "ctime", "ino"))
    )
