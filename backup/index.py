"""Index files: which blob lives where, written by each backup session after its packs.

An index file is a sealed object (encrypted, named by the SHA-256 of its bytes) listing
packs and their blobs. Sessions append new files and never rewrite old ones, which is what
lets backups run without a lock; prune writes consolidated files that ``supersede`` older
ones and deletes those only in its second phase.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import zstandard

from backup.errors import CorruptObject
from backup.pack import BlobEntry

INDEX_PREFIX = "index/"
_MAGIC = b"BCPIDX1\n"
_COUNT = struct.Struct("<I")
_PACK = struct.Struct("<32sB32sQI")
_BLOB = struct.Struct("<BB32sQII")


@dataclass(frozen=True)
class IndexedPack:
    name: str
    blob_type: int
    salt: bytes
    size: int
    entries: tuple[BlobEntry, ...]


@dataclass(frozen=True)
class IndexFile:
    packs: tuple[IndexedPack, ...]
    supersedes: tuple[str, ...] = ()


def encode_index(index: IndexFile) -> bytes:
    parts = [_MAGIC, _COUNT.pack(len(index.supersedes))]
    parts += [bytes.fromhex(name) for name in index.supersedes]
    parts.append(_COUNT.pack(len(index.packs)))
    for pack in index.packs:
        parts.append(_PACK.pack(bytes.fromhex(pack.name), pack.blob_type, pack.salt, pack.size, len(pack.entries)))
        parts += [_BLOB.pack(e.type, e.flags, e.id, e.offset, e.length, e.raw_length) for e in pack.entries]
    return zstandard.ZstdCompressor(level=3).compress(b"".join(parts))


def decode_index(data: bytes, where: str) -> IndexFile:
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
        if raw[: len(_MAGIC)] != _MAGIC:
            raise ValueError("bad magic")
        pos = len(_MAGIC)
        (count,) = _COUNT.unpack_from(raw, pos)
        pos += _COUNT.size
        supersedes = tuple(raw[pos + 32 * i : pos + 32 * (i + 1)].hex() for i in range(count))
        pos += 32 * count
        (pack_count,) = _COUNT.unpack_from(raw, pos)
        pos += _COUNT.size
        packs = []
        for _ in range(pack_count):
            name, blob_type, salt, size, blob_count = _PACK.unpack_from(raw, pos)
            pos += _PACK.size
            entries = []
            for _ in range(blob_count):
                t, flags, chunk_id, offset, length, raw_length = _BLOB.unpack_from(raw, pos)
                pos += _BLOB.size
                entries.append(BlobEntry(chunk_id, t, flags, offset, length, raw_length))
            packs.append(IndexedPack(name.hex(), blob_type, salt, size, tuple(entries)))
        if pos != len(raw):
            raise ValueError("trailing bytes")
    except (ValueError, struct.error, zstandard.ZstdError) as exc:
        raise CorruptObject(f"{where} is not a valid index ({exc})") from None
    return IndexFile(tuple(packs), supersedes)
