"""Content-defined chunking with the repository's secret gear-table seed (FastCDC 2020).

Chunk boundaries depend on content, so an edit shifts only nearby boundaries and the rest
of a file or a database dump deduplicates against yesterday's. The per-repository seed keeps
boundaries from revealing content to the storage. pyfastcdc's ``FastCDC`` objects are not
thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from pyfastcdc import FastCDC

from backup.repository import ChunkerParams

_local = threading.local()


def _chunker(params: ChunkerParams, seed: int) -> FastCDC:
    cached = getattr(_local, "chunker", None)
    if cached is None or cached[0] != (params, seed):
        # Normalized chunking level 2 narrows the size spread around the average (paper §3.5).
        cdc = FastCDC(params.avg, min_size=params.min, max_size=params.max, normalized_chunking=2, seed=seed)
        cached = _local.chunker = ((params, seed), cdc)
    return cached[1]


def chunks(stream: BinaryIO, params: ChunkerParams, seed: int) -> Iterator[memoryview]:
    """Chunks of ``stream``; each view is valid only until the next one is requested."""
    for chunk in _chunker(params, seed).cut_stream(stream):
        yield chunk.data


def chunks_of_buffer(data: bytes | memoryview, params: ChunkerParams, seed: int) -> Iterator[memoryview]:
    for chunk in _chunker(params, seed).cut_buf(data):
        yield chunk.data
