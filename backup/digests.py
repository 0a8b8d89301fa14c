"""SHA-256 (and MD5) of several buffers at once: replication's objects.

Every object a replication run sends is first hashed against its SHA-256 name (DESIGN
"replication/": a damaged source object is reported, never replicated), and an S3 PUT also
carries a Content-MD5 that the server checks. On hosts without SHA instructions those two
hashes, one stream at a time, cost more CPU than the whole upload. ``backup/_digests.c``
hashes up to sixteen objects together in AVX-512 lanes, reading each byte once for both
hashes; without the extension or the CPU feature, :mod:`hashlib` does the same job slower.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Sequence
from dataclasses import dataclass

try:  # built from backup/_digests.c by `pip install` (optional: no compiler, no speed-up)
    from backup import _digests as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

#: buffers hashed together in one call (the width of an AVX-512 register in 32-bit lanes)
LANES: int = _native.LANES if _native is not None else 1

Buffer = bytes | bytearray | memoryview | mmap.mmap


@dataclass(frozen=True)
class Digests:
    sha256: bytes
    #: ``None`` when it was not asked for
    md5: bytes | None = None

    @property
    def hex(self) -> str:
        return self.sha256.hex()


def digest_all(buffers: Sequence[Buffer], *, md5: bool = False) -> list[Digests]:
    """The SHA-256 (and, with ``md5``, the MD5) of every buffer, in order.

    Releases the GIL while hashing, so other threads work meanwhile. A lane runs at about a
    quarter of OpenSSL's single-stream speed, so lanes pay only while many of them are busy:
    buffers larger than an eighth of what is left go through OpenSSL, the rest into lanes
    largest first (so the lanes finish together), and fewer than three buffers never use lanes.
    """
    if _native is None or LANES <= 1 or len(buffers) < 3:
        return [_one(b, md5) for b in buffers]
    order = sorted(range(len(buffers)), key=lambda i: len(buffers[i]), reverse=True)
    left = sum(len(b) for b in buffers)
    alone = 0
    while alone < len(order) and len(buffers[order[alone]]) * 8 > left:
        left -= len(buffers[order[alone]])
        alone += 1
    results: list[Digests | None] = [None] * len(buffers)
    laned = order[alone:]
    if len(laned) < 3:
        alone, laned = len(order), []
    for i in order[:alone]:
        results[i] = _one(buffers[i], md5)
    if laned:
        native = _native.digests([buffers[i] for i in laned], sha256=True, md5=md5)
        for i, (sha, m) in zip(laned, native, strict=True):
            results[i] = Digests(sha, m)
    return results  # type: ignore[return-value]


def _one(buffer: Buffer, md5: bool) -> Digests:
    sha = hashlib.sha256(buffer).digest()
    return Digests(sha, hashlib.md5(buffer, usedforsecurity=False).digest() if md5 else None)
