"""Writing blobs for one backup session: dedup, compress, encrypt, pack, upload, index.

Throughput comes from threads (pyfastcdc, BLAKE3, hashlib, zstd and AES-GCM all release the
GIL): callers chunk, hash and compress in parallel; only appending a sealed blob to the open
pack of its type is serialised, and finished packs go to a small upload pool. Memory stays
bounded: one open pack per type, a fixed number of packs in flight to storage, and an index
file every ``index_every`` packs, after which the session's blob ids move from RAM to the
cache.

Crash safety is the write order: packs, then the index file naming them, then (by the
caller) the snapshot. Whatever a crash interrupts is unreferenced garbage for prune.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from backup import compress
from backup.index import INDEX_PREFIX, IndexedPack, encode_index, split_index
from backup.pack import BLOB_DATA, BLOB_TREE, FinishedPack, PackBuilder, pack_key
from backup.repository import Repository
from dc.failpoint import failpoint


@dataclass
class WriteStats:
    blobs_added: int = 0
    raw_bytes_added: int = 0
    #: bytes written to storage in packs (compressed and encrypted)
    stored_bytes_added: int = 0
    packs_written: int = 0
    index_files_written: int = 0


class BlobWriter:
    """Deduplicating blob sink for one session. ``add`` is safe from many threads."""

    def __init__(
        self,
        repo: Repository,
        *,
        uploaders: int = 2,
        index_every: int = 32,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.repo = repo
        self.stats = WriteStats()
        self._pack_size = repo.config.pack_size
        # a full pack plus one largest blob and its header, so packs never reallocate
        self._pack_capacity = repo.config.pack_size + repo.config.chunker.max + 256 * 1024
        self._index_every = index_every
        self._lock = threading.Lock()
        # Blobs packed this session but not yet in a written index file.
        self._pending_ids: set[bytes] = set()
        self._uploaded: list[IndexedPack] = []
        # One open pack per blob type; appending (AES-GCM, GIL released) happens under its lock.
        self._builders: dict[int, PackBuilder] = {}
        self._pack_lock = threading.Lock()
        self._upload_pool = ThreadPoolExecutor(uploaders, thread_name_prefix="bcp-upload")
        # Bounded packs in flight: a fast chunker must not queue the whole backup in RAM.
        self._in_flight = threading.BoundedSemaphore(uploaders)
        self._uploads: list[Future[None]] = []
        self._error: BaseException | None = None
        self._on_stored = on_stored
        self.index_names: list[str] = []

    # -- adding -------------------------------------------------------------------------------

    def add(self, chunk_id: bytes, data: bytes | memoryview, blob_type: int = BLOB_DATA) -> bool:
        """Store a blob unless the repository or this session has it; return whether it was new."""
        if self._error is not None:
            raise self._error
        with self._lock:
            if chunk_id in self._pending_ids:
                return False
            if self.repo.cache.has(chunk_id):
                return False
            self._pending_ids.add(chunk_id)
        payload, flags = compress.encode(data)
        full = None
        with self._pack_lock:
            builder = self._builders.get(blob_type)
            if builder is None:
                capacity = self._pack_capacity if blob_type == BLOB_DATA else 1 << 20
                builder = self._builders[blob_type] = PackBuilder(
                    self.repo.master, self.repo.repo_id, blob_type, capacity=capacity
                )
            builder.add(chunk_id, payload, flags, len(data))
            if len(builder) >= self._pack_size:
                full = self._builders.pop(blob_type)
        if full is not None:
            self._ship(full)
        return True

    def add_tree(self, data: bytes) -> bytes:
        """Store a metadata blob; return its id (used by :class:`~backup.tree.TreeWriter`)."""
        chunk_id = self.repo.master.chunk_id_of(data)
        self.add(chunk_id, data, BLOB_TREE)
        return chunk_id

    # -- shipping -----------------------------------------------------------------------------

    def _ship(self, builder: PackBuilder) -> None:
        if not builder.entries:
            return
        pack = builder.finish()
        self._in_flight.acquire()
        self._uploads.append(self._upload_pool.submit(self._upload, pack))

    def _upload(self, pack: FinishedPack) -> None:
        try:
            self.repo.backend.save(pack.key, pack.data)
            indexed = IndexedPack(pack.name, pack.blob_type, pack.salt, len(pack.data), pack.entries)
            with self._lock:
                self._uploaded.append(indexed)
                self.stats.packs_written += 1
                self.stats.blobs_added += len(pack.entries)
                self.stats.raw_bytes_added += sum(e.raw_length for e in pack.entries)
                self.stats.stored_bytes_added += len(pack.data)
                due = len(self._uploaded) >= self._index_every
            if self._on_stored:
                self._on_stored(len(pack.data))
            if due:
                self._write_index()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._in_flight.release()

    def _write_index(self) -> None:
        with self._lock:
            packs, self._uploaded = self._uploaded, []
        if not packs:
            return
        for index in split_index(packs):
            name = self.repo.save_sealed(INDEX_PREFIX, "index", encode_index(index))
            # The cache learns a blob only once an index file in the repository names it.
            self.repo.cache.add_index(name, index)
            self.repo.journal.index(name, {pack_key(p.name, p.blob_type): p.size for p in index.packs})
            with self._lock:
                for pack in index.packs:
                    for entry in pack.entries:
                        self._pending_ids.discard(entry.id)
                self.index_names.append(name)
                self.stats.index_files_written += 1

    def flush(self) -> list[str]:
        """Ship every open pack, wait for storage, write the final index; return index names."""
        with self._pack_lock:
            open_packs, self._builders = list(self._builders.values()), {}
        for builder in open_packs:
            self._ship(builder)
        for upload in self._uploads:
            upload.result()
        self._uploads.clear()
        if self._error is not None:
            raise self._error
        failpoint("backup.after-packs")
        self._write_index()
        return self.index_names

    def close(self) -> None:
        self._upload_pool.shutdown(wait=True, cancel_futures=True)
