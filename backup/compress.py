"""zstd for blobs, skipped where it does not pay.

A quarter of a municipal data center's bytes (scanned forms, images, already-compressed
archives) do not shrink; compressing them anyway costs as much CPU as everything else. A
level-1 probe of the first 32 KiB decides cheaply, and a blob that compresses to more than
97% of its size is stored raw.

The compressor is zstd's fast strategy (level 1) with a 32 Ki-entry hash table and a 1 MiB
window (a match may reach back across a whole average chunk). Compression is about half of a
full backup's CPU: on the benchmark's municipal data (SQL dumps in Japanese, documents, scans)
the smaller table compresses 10–12% faster than a 64 Ki-entry one for 0.4–0.6% more stored
bytes, and the wider window wins back a third of those; still fewer bytes than restic's
``auto`` (docs/performance.md). Decompression runs at the same speed either way.
"""

from __future__ import annotations

import threading

import zstandard

from backup.errors import CorruptObject
from backup.pack import FLAG_ZSTD
from dc.errors import N_

PARAMETERS = zstandard.ZstdCompressionParameters.from_level(1, hash_log=15, window_log=20, source_size=1 << 20)
_PROBE_BYTES = 32 * 1024
_WORTH_IT = 0.97

_local = threading.local()


def _compressors() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
    pair = getattr(_local, "compressors", None)
    if pair is None:
        # zstandard compressor objects are not thread-safe: one pair per thread.
        pair = _local.compressors = (
            zstandard.ZstdCompressor(compression_params=PARAMETERS),
            zstandard.ZstdCompressor(level=1),
        )
    return pair


def encode(data: bytes | memoryview) -> tuple[bytes | memoryview, int]:
    """Return ``(payload, flags)``: compressed when that saves at least 3%, else the input."""
    full, probe = _compressors()
    size = len(data)
    if size >= 2 * _PROBE_BYTES and len(probe.compress(data[:_PROBE_BYTES])) > _PROBE_BYTES * _WORTH_IT:
        return data, 0
    packed = full.compress(data)
    if len(packed) < size * _WORTH_IT:
        return packed, FLAG_ZSTD
    return data, 0


def decode(payload: bytes, flags: int, raw_length: int, what: str) -> bytes:
    if not flags & FLAG_ZSTD:
        return payload
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    try:
        data = decompressor.decompress(payload, max_output_size=raw_length)
    except zstandard.ZstdError as exc:
        raise CorruptObject(N_("{what} does not decompress: {exc}"), what=what, exc=exc) from None
    if len(data) != raw_length:
        raise CorruptObject(
            N_("{what} decompresses to {n_data} bytes, expected {raw_length}"),
            what=what,
            n_data=len(data),
            raw_length=raw_length,
        )
    return data
