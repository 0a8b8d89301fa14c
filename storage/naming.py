"""Content-addressed object names: a key whose last part is the SHA-256 of the object's bytes.

Every object a repository writes, except the few fixed-name ones (config, key slots, the
signed manifest), is named by the SHA-256 of its stored bytes (DESIGN "backup/"). Storage
sees that in the key alone: S3 sends the name as the upload's checksum so the server checks
it, and replication and verification check any copy without a key.
"""

from __future__ import annotations

import hashlib
import mmap
import re

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTENT_PREFIXES = ("data/", "meta/", "index/", "snapshots/", "tombstones/", "wal/")

Buffer = bytes | bytearray | memoryview | mmap.mmap


def sha256_of(body: Buffer) -> bytes:
    """The SHA-256 of ``body`` (its name, if content-addressed). hashlib releases the GIL on large
    buffers, so checking threads hash in parallel."""
    return hashlib.sha256(body).digest()


def content_name(key: str) -> str | None:
    """The SHA-256 an object must hash to, for content-addressed keys; ``None`` otherwise."""
    if not key.startswith(_CONTENT_PREFIXES):
        return None
    name = key.rsplit("/", 1)[-1]
    if not _HEX64.fullmatch(name):
        return None
    if key.startswith(("data/", "meta/")) and key.split("/")[1] != name[:2]:
        return None
    return name


def is_content_addressed(key: str) -> bool:
    """Whether ``key`` lives where objects are named by their hash (well-formed or not)."""
    return key.startswith(_CONTENT_PREFIXES)
