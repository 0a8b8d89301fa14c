"""SHA-256 (and MD5) of several objects at once, for the replication hot path.

Every object a replication run sends is first hashed against its SHA-256 name (DESIGN
"replication/": a damaged source object is reported, never replicated), and an S3 PUT also
carries a Content-MD5 that the server checks. On hosts without SHA instructions those two
hashes, one stream at a time, cost more CPU than the whole upload. ``replication/_digests.c``
hashes up to sixteen objects together in AVX-512 lanes, reading each byte once for both
hashes; without the extension or the CPU feature, :mod:`hashlib` does the same job slower.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Sequence
from dataclasses import dataclass

try:  # built from replication/_digests.c by `pip install` (optional: no compiler, no speed-up)
    from replication import _digests as _native
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

    Releases the GIL while hashing, so other threads upload meanwhile. Lanes pay off from
    about three buffers on; fewer go through OpenSSL, which is faster for a single stream.
    """
    if _native is not None and LANES > 1 and len(buffers) >= 3:
        return [Digests(sha, m) for sha, m in _native.digests(buffers, sha256=True, md5=md5)]
    return [
        Digests(hashlib.sha256(b).digest(), hashlib.md5(b, usedforsecurity=False).digest() if md5 else None)
        for b in buffers
    ]
