"""Whole-pack fetching for remote storage, so a restore costs one request per pack, not per blob.

On S3 or SFTP a ranged read per blob would turn a tree of ten thousand small files into ten
thousand round trips. For backends without cheap ranges, the first read from a pack fetches
the whole pack into a private temporary directory, verifies its SHA-256 against its name, and
later blobs come from local disk. The directory is bounded (least recently used packs go
first) and removed when the repository closes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from backup.errors import CorruptObject
from backup.objectsize import load_whole
from backup.pack import PACK_DIRS
from dc.errors import N_
from storage.backend import Backend
from storage.errors import ObjectNotFound


class PackCache:
    def __init__(
        self, backend: Backend, pack_bound: Callable[[int], int], limit_bytes: int = 512 * 1024 * 1024
    ) -> None:
        self._backend = backend
        #: the largest genuine pack of a blob type: a larger object is never fetched whole
        self._pack_bound = pack_bound
        self._limit = limit_bytes
        self._dir = Path(tempfile.mkdtemp(prefix="bcpctl-packs-"))
        self._files: OrderedDict[str, int] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Event] = {}

    def read(self, key: str, offset: int, length: int) -> bytes:
        path = self._ensure(key)
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), length, offset)
        if len(data) != length:
            raise CorruptObject(N_("{key} is shorter than its index says"), key=key)
        return data

    def _ensure(self, key: str) -> Path:
        name = key.rsplit("/", 1)[-1]
        path = self._dir / name
        while True:
            with self._lock:
                if name in self._files:
                    self._files.move_to_end(name)
                    return path
                waiting = self._fetching.get(name)
                if waiting is None:
                    self._fetching[name] = threading.Event()
                    break
            waiting.wait()  # another thread is fetching this pack
        try:
            try:
                blob_type = next(t for t, d in PACK_DIRS.items() if key.startswith(d + "/"))
                data = load_whole(self._backend, key, "pack", bound=self._pack_bound(blob_type))
            except ObjectNotFound:
                raise CorruptObject(N_("pack {key} is missing"), key=key) from None
            if hashlib.sha256(data).hexdigest() != name:
                raise CorruptObject(
                    N_("pack {key} does not match its name (corrupted in storage or in transit)"), key=key
                )
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            with self._lock:
                self._files[name] = len(data)
                self._size += len(data)
                while self._size > self._limit and len(self._files) > 1:
                    old, size = self._files.popitem(last=False)
                    (self._dir / old).unlink(missing_ok=True)
                    self._size -= size
            return path
        finally:
            with self._lock:
                self._fetching.pop(name).set()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
