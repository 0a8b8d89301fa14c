"""The whole-file digest a snapshot records for each file, and how restore checks it.

Two formats, told apart by the entry's fields (the snapshot's ``version`` says which a
writer used; readers accept both, so every snapshot ever written still restores and
verifies):

- version 1: ``sha256`` of the file. SHA-256 is a chain: its check runs on one core, in
  file order, so a large file could only ever be verified by one worker.
- version 2 (files of a path source): ``blake3`` of the file, plus ``sizes``, the plaintext
  length of each chunk. BLAKE3 is a tree hash: the library hashes one buffer on every core
  (``max_threads``), and the chunk lengths give every chunk its offset before anything is
  read, so several workers can write a large file's ranges at once (:mod:`backup.restoreparts`)
  and the file is then checked in parallel. Streams (database dumps, ``command``) keep
  ``sha256``: what seals and drills compare is their SHA-256.

Each chunk is authenticated on its own while it is decrypted (AES-GCM with the chunk id as
associated data); the file digest checks the whole: the right chunks, in the right order,
nothing missing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Protocol

import blake3

from backup.tree import Entry

#: the digest new file entries carry
FILE_DIGEST = "blake3"
#: the fields an entry's content is recorded in, besides ``chunks`` and ``size`` (``ctype``:
#: :mod:`backup.contenttype`)
CONTENT_FIELDS = ("sha256", "blake3", "sizes", "ctype")

_READ_BYTES = 8 * 1024 * 1024


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


class UnknownDigest(ValueError):
    """The entry records no digest this version knows."""


def recorded(entry: Entry) -> tuple[str, str]:
    """``(algorithm, hex digest)`` the snapshot recorded for this file."""
    for algorithm in ("blake3", "sha256"):
        value = entry.get(algorithm)
        if isinstance(value, str):
            return algorithm, value
    raise UnknownDigest("the snapshot's entry for this file records no digest")


def hasher(algorithm: str, *, parallel: bool = False) -> Hasher:
    """A fresh hasher; ``parallel``: BLAKE3 spread over every core (large buffers only pay)."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake3":
        return blake3.blake3(max_threads=blake3.blake3.AUTO if parallel else 1)
    raise UnknownDigest(f"unknown file digest {algorithm!r}")


def digest_fd(fd: int, algorithm: str, *, parallel: bool = False) -> tuple[str, int]:
    """``(hex digest, bytes)`` of an open file from its start (``pread``: the offset is left alone)."""
    h = hasher(algorithm, parallel=parallel)
    total = 0
    for block in _blocks(fd):
        h.update(block)
        total += len(block)
    return h.hexdigest(), total


def _blocks(fd: int) -> Iterator[memoryview]:
    buffer = bytearray(_READ_BYTES)
    view = memoryview(buffer)
    offset = 0
    while True:
        n = os.preadv(fd, [buffer], offset)
        if n == 0:
            return
        yield view[:n]
        offset += n


def chunk_sizes(entry: Entry) -> list[int] | None:
    """The plaintext length of each chunk, when the entry records them consistently (version 2)."""
    sizes = entry.get("sizes")
    chunks = entry.get("chunks")
    if not isinstance(sizes, list) or not isinstance(chunks, list) or len(sizes) != len(chunks):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        return None
    if sum(sizes) != entry.get("size"):
        return None
    return sizes


def copy_content(old: Entry, new: Entry) -> None:
    """Give ``new`` the content fields of ``old`` (an unchanged file of the parent snapshot)."""
    for name in (*CONTENT_FIELDS, "chunks"):
        if name in old:
            new[name] = old[name]
