"""Restore's blob reads into buffers that live as long as the reader.

Reading a blob the ordinary way (:meth:`Repository.read_blob`) allocates three fresh
megabyte-sized buffers: the ``pread`` result, the AES-GCM output (which the binding
zero-fills before decrypting into it) and zstd's output. Buffers that large come straight
from ``mmap``, so each blob would pay its size again in page faults and zeroing, more kernel
time than writing the restored files (docs/performance.md). Here the sealed bytes, the
plaintext and the decompressed bytes land in three buffers reused from blob to blob.

The checks are those of ``read_blob(check_id=False)``: GCM authenticates every blob with its
chunk id as associated data, the decompressed length must be the indexed one, and a damaged
copy falls back to another copy. Local repositories only (the pack is read with ``preadv``);
other storage goes through ``read_blob``. Not thread-safe: one reader per thread or process,
and each returned view is valid only until the next read.
"""

from __future__ import annotations

from collections.abc import Iterable

import zstandard
from cryptography.exceptions import InvalidTag

from backup.cache import Location
from backup.crypto import TAG_BYTES, counter_nonce
from backup.errors import CorruptObject
from backup.pack import FLAG_ZSTD, blob_aad, pack_key
from backup.repository import Repository
from dc.errors import N_
from storage.errors import ObjectNotFound, StorageError
from storage.local import LocalBackend


class _Buffer:
    """One reused buffer; replaced, never resized, when too small (views of the old one may live on)."""

    __slots__ = ("_memory",)

    def __init__(self) -> None:
        self._memory = memoryview(bytearray())

    def view(self, size: int) -> memoryview:
        if len(self._memory) < size:
            self._memory = memoryview(bytearray(max(size, 2 * len(self._memory))))
        return self._memory[:size]


class BlobReader:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        backend = repo.backend
        self._local = backend if type(backend) is LocalBackend else None
        self._sealed, self._plain, self._raw = _Buffer(), _Buffer(), _Buffer()
        self._decompressor = zstandard.ZstdDecompressor()
        self._known: dict[bytes, list[Location]] = {}

    def prefetch(self, chunk_ids: Iterable[bytes]) -> None:
        """Look up where the next blobs to read are, in one batch (until the next prefetch)."""
        if self._local is not None:
            self._known = self._repo.cache.locations_of(chunk_ids)

    def read(self, chunk_id: bytes) -> bytes | memoryview:
        """The blob's plaintext; a view into this reader's buffers when the repository is local."""
        if self._local is None:
            return self._repo.read_blob(chunk_id, check_id=False)
        copies = self._known.get(chunk_id) or self._repo.cache.locations(chunk_id)
        if not copies:
            raise CorruptObject(
                N_("blob {chunk_id} is not in any index (missing pack or index)"), chunk_id=chunk_id.hex()[:16]
            )
        errors: list[CorruptObject] = []
        for location in copies:
            try:
                return self._read_at(self._local, chunk_id, location)
            except CorruptObject as exc:
                errors.append(exc)
        raise errors[0]

    def _read_at(self, backend: LocalBackend, chunk_id: bytes, loc: Location) -> memoryview:
        key = pack_key(loc.pack, loc.blob_type)
        if loc.length < TAG_BYTES:
            raise CorruptObject(
                N_("blob {chunk_id} in {key} has an impossible length"), chunk_id=chunk_id.hex()[:16], key=key
            )
        sealed = self._sealed.view(loc.length)
        try:
            backend.load_into(key, loc.offset, sealed)
        except ObjectNotFound:
            raise CorruptObject(
                N_("pack {key} holding blob {chunk_id} is missing"), key=key, chunk_id=chunk_id.hex()[:16]
            ) from None
        except StorageError as exc:  # a local pack shorter than its index says: truncated
            raise CorruptObject(N_("blob {chunk_id}: {message_}"), chunk_id=chunk_id.hex()[:16], message_=exc) from None
        plain = self._plain.view(loc.length - TAG_BYTES)
        aad = blob_aad(self._repo.repo_id, loc.blob_type, loc.flags, chunk_id)
        try:
            self._repo.cipher_for(loc.salt).decrypt_into(counter_nonce(loc.offset), sealed, aad, plain)
        except InvalidTag:
            raise CorruptObject(
                N_("blob {chunk_id} in {key} fails authentication"), chunk_id=chunk_id.hex()[:16], key=key
            ) from None
        if not loc.flags & FLAG_ZSTD:
            if len(plain) != loc.raw_length:
                raise CorruptObject(
                    N_("blob {chunk_id} in {key} is {n_plain} bytes, expected {raw_length}"),
                    chunk_id=chunk_id.hex()[:16],
                    key=key,
                    n_plain=len(plain),
                    raw_length=loc.raw_length,
                )
            return plain
        # One byte of room beyond the indexed length, so a frame that decompresses longer shows.
        room = self._raw.view(loc.raw_length + 1)
        done = 0
        try:
            reader = self._decompressor.stream_reader(plain)
            while got := reader.readinto(room[done:]):
                done += got
        except zstandard.ZstdError as exc:
            raise CorruptObject(
                N_("blob {chunk_id} in {key} does not decompress: {exc}"),
                chunk_id=chunk_id.hex()[:16],
                key=key,
                exc=exc,
            ) from None
        if done != loc.raw_length:
            raise CorruptObject(
                N_("blob {chunk_id} in {key} decompresses to {done} bytes, expected {raw_length}"),
                chunk_id=chunk_id.hex()[:16],
                key=key,
                done=done,
                raw_length=loc.raw_length,
            )
        return room[:done]
