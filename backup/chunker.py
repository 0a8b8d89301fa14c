"""Content-defined chunking with the repository's secret gear-table seed (FastCDC 2020).

Chunk boundaries depend on content, so an edit shifts only nearby boundaries and the rest
of a file or a database dump deduplicates against yesterday's. The per-repository seed keeps
boundaries from revealing content to the storage.

Streams are read in large blocks (the read releases the GIL) and cut with pyfastcdc's
buffer chunker, whose gear loop also runs without the GIL; the last, possibly incomplete
chunk of a block is carried into the next. FastCDC restarts its hash at every chunk start,
so the boundaries are exactly those of chunking the whole stream at once. (pyfastcdc's own
stream chunker holds the GIL while it shuffles its buffer, which serialises parallel
readers.) ``FastCDC`` objects are not thread-safe, so each thread gets its own.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from typing import Protocol

from pyfastcdc import FastCDC

from backup.repository import ChunkerParams

_local = threading.local()
_BLOCK = 4 * 1024 * 1024


def _chunker(params: ChunkerParams, seed: int) -> FastCDC:
    cached = getattr(_local, "chunker", None)
    if cached is None or cached[0] != (params, seed):
        # Normalized chunking level 2 narrows the size spread around the average (paper §3.5).
        cdc = FastCDC(params.avg, min_size=params.min, max_size=params.max, normalized_chunking=2, seed=seed)
        cached = _local.chunker = ((params, seed), cdc)
    return cached[1]


class ReadableStream(Protocol):
    """What chunking reads: an unbuffered file, or a pipe's buffered reader."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def _fill(stream: ReadableStream, view: memoryview) -> int:
    """Read until ``view`` is full or the stream ends (pipes return short reads)."""
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


def _buffer(size: int) -> bytearray:
    """This thread's read buffer, reused across files: zero-filling 8 MiB per file holds the GIL."""
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) != size:
        buffer = _local.buffer = bytearray(size)
    return buffer


def chunks(stream: ReadableStream, params: ChunkerParams, seed: int, *, block: int = _BLOCK) -> Iterator[memoryview]:
    """Chunks of ``stream``; each view is valid only until the next one is requested.

    Not re-entrant per thread: finish (or drop) one stream's iterator before starting another.
    """
    cdc = _chunker(params, seed)
    block = max(block, params.max)
    buffer = _buffer(block + params.max)
    view = memoryview(buffer)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    carried = 0
    while True:
        got = _fill(stream, view[carried : carried + block])
        end = carried + got
        at_eof = got < block
        if end == 0:
            return
        pieces = list(cdc.cut_buf(view[:end]))
        if not at_eof:
            last = pieces.pop()  # may have been cut short by the block's end: redo it with more data
        for piece in pieces:
            yield piece.data
        if at_eof:
            return
        carried = last.length
        # memmove: source and destination may overlap (and ctypes calls release the GIL).
        ctypes.memmove(address, address + last.offset, carried)


def chunks_of_buffer(data: bytes | memoryview, params: ChunkerParams, seed: int) -> Iterator[memoryview]:
    for chunk in _chunker(params, seed).cut_buf(data):
        yield chunk.data
