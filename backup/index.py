"""Index files: which blob lives where, written by each backup session after its packs.

An index file is a sealed object (encrypted, named by the SHA-256 of its bytes) listing
packs and their blobs. Sessions append new files and never rewrite old ones, which is what
lets backups run without a lock; prune writes consolidated files that ``supersede`` older
ones and deletes those only in its second phase.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from backup.errors import CorruptObject, RepositoryError
from backup.pack import BlobEntry
from dc.errors import N_

INDEX_PREFIX = "index/"
#: the plaintext an index file may have: readers refuse more, so writers never write more
#: (:mod:`backup.objectsize` derives the stored bound from it)
MAX_INDEX_RAW = 1 << 30
#: writers start a new index file once one lists this many blobs (~50 MiB of plaintext), so a
#: consolidation by prune or repair stays far below :data:`MAX_INDEX_RAW` at any repository size
INDEX_BLOBS_PER_FILE = 1 << 20
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
    raw = b"".join(parts)
    if len(raw) > MAX_INDEX_RAW:
        # One pack alone would have to list ~20 million blobs: refused rather than written unreadable.
        raise RepositoryError(
            N_("an index file would hold {n_raw} bytes, over {MAX_INDEX_RAW}; nothing was written"),
            n_raw=len(raw),
            MAX_INDEX_RAW=MAX_INDEX_RAW,
        )
    return zstandard.ZstdCompressor(level=3).compress(raw)


def split_index(
    packs: Sequence[IndexedPack], supersedes: Sequence[str] = (), *, max_packs: int | None = None
) -> list[IndexFile]:
    """``packs`` as index files of at most :data:`INDEX_BLOBS_PER_FILE` blobs (a pack is never
    split) and at most ``max_packs`` packs.

    The last file carries ``supersedes``: written last, it names the files it replaces only
    once every pack it keeps is indexed by the files before it.
    """
    files: list[IndexFile] = []
    current: list[IndexedPack] = []
    blobs = 0
    for pack in packs:
        full = max_packs is not None and len(current) >= max_packs
        if current and (full or blobs + len(pack.entries) > INDEX_BLOBS_PER_FILE):
            files.append(IndexFile(tuple(current)))
            current, blobs = [], 0
        current.append(pack)
        blobs += len(pack.entries)
    files.append(IndexFile(tuple(current), tuple(supersedes)))
    return files


def decode_index(data: bytes, where: str) -> IndexFile:
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_INDEX_RAW)
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
        raise CorruptObject(N_("{where} is not a valid index ({exc})"), where=where, exc=exc) from None
    return IndexFile(tuple(packs), supersedes)
