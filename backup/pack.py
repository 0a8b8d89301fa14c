"""Packs: many encrypted blobs in one object, named by the SHA-256 of its bytes.

Layout::

    "BCPPACK1" | salt (32) | blob ... blob | header ciphertext | header length (u32 LE)

* Each blob is AES-256-GCM under the pack's subkey HKDF(master, salt), with the blob's byte
  offset as its nonce (unique inside the pack) and, as associated data, the repository id,
  the blob's type, its compression flag and its keyed chunk id. A blob copied to another
  offset, pack or repository fails authentication.
* The encrypted header lists every blob (type, flags, id, offset, length, plaintext length),
  so the index can be rebuilt from the packs alone, and ``check --read-data`` can verify a
  pack without trusting any index.
* Because the object name is SHA-256 of the bytes, anyone — the offsite site included — can
  verify a pack with no key at all.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backup.crypto import HEADER_NONCE, SALT_BYTES, TAG_BYTES, MasterKey, counter_nonce
from backup.errors import CorruptObject
from dc.errors import N_

MAGIC = b"BCPPACK1"
PREFIX_BYTES = len(MAGIC) + SALT_BYTES

BLOB_DATA = 0
BLOB_TREE = 1
FLAG_ZSTD = 1

_ENTRY = struct.Struct("<BB32sQII")
_TRAILER = struct.Struct("<I")

PACK_DIRS = {BLOB_DATA: "data", BLOB_TREE: "meta"}


def pack_key(name: str, blob_type: int) -> str:
    """Storage key of a pack: data and metadata packs live apart (metadata stays hot)."""
    return f"{PACK_DIRS[blob_type]}/{name[:2]}/{name}"


@dataclass(frozen=True, slots=True)
class BlobEntry:
    id: bytes
    type: int
    flags: int
    offset: int
    length: int
    raw_length: int


def _pack_buffer(capacity: int) -> mmap.mmap:
    """Private anonymous memory: only the pages written become resident.

    Not ``mmap(-1, n)``'s default shared mapping: shared anonymous pages live in shmem, whose
    page faults cost a third more (0.04 s of CPU per 320 MiB of packs here), and a pack
    buffer is never shared with another process. Reusing a stored pack's buffer would save
    the faults altogether, but keeps a second full pack resident per writer for the whole
    backup (+23 MiB peak over three processes on the 640 MiB benchmark; docs/performance.md).
    """
    return mmap.mmap(-1, max(capacity, PREFIX_BYTES), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def blob_aad(repo_id: bytes, blob_type: int, flags: int, chunk_id: bytes) -> bytes:
    return b"bcpctl/v1/blob" + repo_id + bytes((blob_type, flags)) + chunk_id


def _header_aad(repo_id: bytes) -> bytes:
    return b"bcpctl/v1/pack-header" + repo_id


class PackBuilder:
    """Accumulates encrypted blobs for one pack. Not thread-safe: one builder per thread."""

    def __init__(self, master: MasterKey, repo_id: bytes, blob_type: int, capacity: int = 1 << 20) -> None:
        self.repo_id = repo_id
        self.blob_type = blob_type
        self.salt = os.urandom(SALT_BYTES)
        self._cipher = master.pack_cipher(self.salt)
        # Blobs are encrypted straight into one preallocated buffer: appending to a growing
        # bytearray re-copies megabytes at every reallocation, with the GIL held.
        self.buffer = _pack_buffer(capacity)
        self.buffer[:PREFIX_BYTES] = MAGIC + self.salt
        self._length = PREFIX_BYTES
        self.entries: list[BlobEntry] = []
        self.raw_bytes = 0

    def _reserve(self, size: int) -> memoryview:
        end = self._length + size
        if end > len(self.buffer):
            grown = _pack_buffer(max(end, len(self.buffer) * 3 // 2))
            grown[: self._length] = self.buffer[: self._length]
            self.buffer.close()
            self.buffer = grown
        return memoryview(self.buffer)[self._length : end]

    def add(self, chunk_id: bytes, payload: bytes | memoryview, flags: int, raw_length: int) -> None:
        offset = self._length
        size = len(payload) + TAG_BYTES
        aad = blob_aad(self.repo_id, self.blob_type, flags, chunk_id)
        self._cipher.encrypt_into(counter_nonce(offset), payload, aad, self._reserve(size))
        self._length += size
        self.entries.append(BlobEntry(chunk_id, self.blob_type, flags, offset, size, raw_length))
        self.raw_bytes += raw_length

    def __len__(self) -> int:
        return self._length

    def finish(self) -> FinishedPack:
        """Seal the header; the builder must not be used afterwards."""
        header = b"".join(_ENTRY.pack(e.type, e.flags, e.id, e.offset, e.length, e.raw_length) for e in self.entries)
        sealed_size = len(header) + TAG_BYTES
        self._cipher.encrypt_into(HEADER_NONCE, header, _header_aad(self.repo_id), self._reserve(sealed_size))
        self._length += sealed_size
        self._reserve(_TRAILER.size)[:] = _TRAILER.pack(sealed_size)
        self._length += _TRAILER.size
        data = memoryview(self.buffer)[: self._length]  # the mapping lives as long as this view
        return FinishedPack(
            name=hashlib.sha256(data).hexdigest(),
            blob_type=self.blob_type,
            salt=self.salt,
            data=data,
            entries=tuple(self.entries),
        )


@dataclass(frozen=True)
class FinishedPack:
    name: str
    blob_type: int
    salt: bytes
    data: memoryview
    entries: tuple[BlobEntry, ...]

    @property
    def key(self) -> str:
        return pack_key(self.name, self.blob_type)


def decrypt_blob(cipher: AESGCM, repo_id: bytes, entry: BlobEntry, sealed: bytes | memoryview, where: str) -> bytes:
    """The blob's payload (still compressed if ``FLAG_ZSTD``); raises on any tampering."""
    try:
        return cipher.decrypt(counter_nonce(entry.offset), sealed, blob_aad(repo_id, entry.type, entry.flags, entry.id))
    except InvalidTag:
        raise CorruptObject(
            N_("blob {id} in {where} fails authentication"), id=entry.id.hex()[:16], where=where
        ) from None


def parse_pack(master: MasterKey, repo_id: bytes, data: bytes, where: str) -> tuple[bytes, list[BlobEntry]]:
    """Verify a whole pack's structure; return its salt and the header's entries."""
    if len(data) < PREFIX_BYTES + TAG_BYTES + _TRAILER.size or data[: len(MAGIC)] != MAGIC:
        raise CorruptObject(N_("{where} is not a pack (bad magic or truncated)"), where=where)
    (header_len,) = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    header_start = len(data) - _TRAILER.size - header_len
    if header_start < PREFIX_BYTES or header_len < TAG_BYTES:
        raise CorruptObject(N_("{where} has an impossible header length (truncated?)"), where=where)
    salt = data[len(MAGIC) : PREFIX_BYTES]
    cipher = master.pack_cipher(salt)
    try:
        header = cipher.decrypt(HEADER_NONCE, data[header_start : len(data) - _TRAILER.size], _header_aad(repo_id))
    except InvalidTag:
        raise CorruptObject(N_("{where}: pack header fails authentication"), where=where) from None
    if len(header) % _ENTRY.size:
        raise CorruptObject(N_("{where}: pack header has a partial entry"), where=where)
    entries = []
    for fields in _ENTRY.iter_unpack(header):
        entry = BlobEntry(fields[2], fields[0], fields[1], fields[3], fields[4], fields[5])
        if entry.offset < PREFIX_BYTES or entry.offset + entry.length > header_start:
            raise CorruptObject(N_("{where}: blob {id} lies outside the pack"), where=where, id=entry.id.hex()[:16])
        entries.append(entry)
    return salt, entries


def iter_blobs(master: MasterKey, repo_id: bytes, data: bytes, where: str) -> Iterator[tuple[BlobEntry, bytes]]:
    """Every blob of a pack, decrypted (payload may still be compressed)."""
    salt, entries = parse_pack(master, repo_id, data, where)
    cipher = master.pack_cipher(salt)
    view = memoryview(data)
    for entry in entries:
        yield entry, decrypt_blob(cipher, repo_id, entry, view[entry.offset : entry.offset + entry.length], where)
