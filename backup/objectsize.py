"""How large each kind of object can genuinely be, checked before anything is read whole.

Anyone who can write the repository's storage (or a careless copy of a disk image into it) can
leave an object of many gigabytes — a sparse file costs no disk — under a name bcpctl reads
whole. Reading it first and judging it after asks the host for that memory: one such object
would make every listing, check, restore and prune fail. So every object kind bcpctl loads
whole has a bound that a genuine object can never exceed, compared with the size the storage
reports (listing or ``stat``) *before* the load, and the load then asks for exactly that many
bytes, so an object that grows in between is read no further. An object over its bound is an
:class:`OversizedObject`: a damaged object of its kind, named and skipped like one whose bytes
are wrong.

The bounds, and why nothing bcpctl writes exceeds them (writers check the same numbers):

=============  ====================================================================================
kind           bound
=============  ====================================================================================
config         64 KiB: a JSON document of fixed fields (~300 bytes).
key slot       :data:`backup.slotformat.MAX_SLOT_BYTES` (16 KiB): fixed fields and a label of at most
               200 characters (:mod:`backup.keyslots`).
lock           64 KiB: host, machine and boot ids, pid, start, TTL and a token (< 1 KiB).
snapshot       64 MiB sealed: fixed fields, 67 bytes per tree blob id (each tree blob holds up to
               1 MiB of file list, so a million of them list terabytes of metadata) and one row
               count per table. ``save_snapshot`` refuses to write a larger one.
tombstone      256 MiB sealed: 67 bytes per condemned pack or index file, about four million
               names (64 TiB of 16 MiB packs in one prune). Prune refuses to write a larger one.
index          the zstd bound of :data:`MAX_INDEX_RAW` (1 GiB, which ``decode_index`` refuses to
               exceed) plus the seal: an index file's plaintext is 50 bytes per blob. Writers cut
               index files at :data:`backup.index.INDEX_BLOBS_PER_FILE` blobs (~50 MiB), and
               ``encode_index`` refuses one past the raw bound, which could never be read.
manifest       1 GiB: about 100 bytes per pack, snapshot and index file, so ten million packs
               (160 TiB of 16 MiB packs). Signing refuses a larger one.
manifest link  1 GiB, the manifest's bound: a format-2 checkpoint states what a format-1 manifest
               does, a delta less. Signing refuses a larger one.
wal            one WAL file (PostgreSQL's segments are at most 1 GiB; ``wal push`` refuses a
               larger file) at its zstd bound, a JSON header of fixed fields, and the seal.
data pack      per repository: ``pack_size`` plus one blob of at most ``chunker.max`` (the
               chunker's cap; a blob is stored uncompressed when compression would not shrink
               it), plus a header of 50 bytes per blob, each blob at least 16 bytes (its tag).
meta pack      the same with one tree blob of at most :data:`MAX_TREE_BLOB`: a tree blob is cut
               after the entry that takes it past 1 MiB, and a file's entry lists its chunk ids
               (67 bytes per chunk), so 1 GiB is one entry of a file of over 10 TiB.
=============  ====================================================================================

Objects read only to find out what they are (``check`` and ``repair`` looking at a stray or a
moved object) are bounded by the largest of these.
"""

from __future__ import annotations

from backup.crypto import SALT_BYTES, TAG_BYTES
from backup.errors import CorruptObject, RepositoryError
from backup.index import MAX_INDEX_RAW
from backup.kindnames import noun
from backup.slotformat import MAX_SLOT_BYTES
from dc.errors import N_
from storage.backend import Backend

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: what :meth:`backup.crypto.MasterKey.seal` adds to a payload (salt and tag)
SEAL_OVERHEAD = SALT_BYTES + TAG_BYTES
#: a tree blob: cut after the entry that passes 1 MiB; one entry lists a file's chunk ids
MAX_TREE_BLOB = 1 * GiB
_INDEX_ENTRY_BYTES = 50
_MIN_SEALED_BLOB = TAG_BYTES
_PACK_FRAME = 8 + SALT_BYTES + TAG_BYTES + 4  # magic, salt, header tag, header length


def _zstd_bound(size: int) -> int:
    """ZSTD_COMPRESSBOUND of ``size``, plus a frame header and block headers to spare."""
    return size + (size >> 8) + 64 * KiB


#: the fixed bounds of the kinds read whole (see the module docstring for why each holds)
MAX_BYTES: dict[str, int] = {
    "config": 64 * KiB,
    "key slot": MAX_SLOT_BYTES,
    "lock": 64 * KiB,
    "snapshot": 64 * MiB + SEAL_OVERHEAD,
    "tombstone": 256 * MiB + SEAL_OVERHEAD,
    "index": _zstd_bound(MAX_INDEX_RAW) + SEAL_OVERHEAD,
    "manifest": 1 * GiB,
    "manifest link": 1 * GiB,
    # a WAL file (at most 1 GiB, PostgreSQL's largest segment) compressed, a header, the seal
    "wal": _zstd_bound(1 * GiB) + 64 * KiB + SEAL_OVERHEAD,
}


class OversizedObject(CorruptObject):
    """An object larger than any genuine object of its kind: not read, reported as damaged (exit 1)."""


def pack_bound(pack_size: int, blob_max: int) -> int:
    """The largest pack a writer with these parameters stores (see the module docstring)."""
    body = pack_size + blob_max + TAG_BYTES
    blobs = pack_size // _MIN_SEALED_BLOB + 1
    return _PACK_FRAME + body + _INDEX_ENTRY_BYTES * blobs


def largest(pack_size: int) -> int:
    """The largest object of any kind (what an object read to identify it may be)."""
    return max(*MAX_BYTES.values(), pack_bound(pack_size, MAX_TREE_BLOB))


def check_size(key: str, kind: str, size: int, bound: int | None = None) -> None:
    """Raise :class:`OversizedObject` if ``size`` is more than a genuine ``kind`` can be."""
    limit = MAX_BYTES[kind] if bound is None else bound
    if size > limit:
        raise OversizedObject(
            N_(
                "{key} is {size} bytes, more than any genuine {kind} can be ({limit} bytes): stray or planted, not read"
            ),
            key=key,
            size=size,
            kind=noun(kind),
            limit=limit,
        )


def load_whole(backend: Backend, key: str, kind: str, *, size: int | None = None, bound: int | None = None) -> bytes:
    """The whole object at ``key``, after checking its size against the bound of ``kind``.

    ``size``: the size a listing just reported (saves a ``stat`` round trip); the load asks
    for exactly that many bytes either way.
    """
    if size is None:
        size = backend.stat(key).size
    check_size(key, kind, size, bound)
    return backend.load(key, 0, size)


def refuse_oversized(what: str, kind: str, size: int) -> None:
    """A writer's check: never store an object that readers would refuse as planted."""
    if size > MAX_BYTES[kind]:
        raise RepositoryError(
            N_("{what} would be {size} bytes, over the {MAX_BYTES} bytes any {kind} may have; nothing was written"),
            what=what,
            size=size,
            MAX_BYTES=MAX_BYTES[kind],
            kind=noun(kind),
        )
