"""What kind of content a file holds, told from its first bytes (never from its name).

Ransomware that encrypts a file in place keeps its name and often its size, but a PDF stops
starting like a PDF: its first bytes become ciphertext. A path backup records each file's
content type in its tree entry (``ctype``, from the first chunk it already holds in memory) so
the next backup can count the files whose type went from known to unknown
(:mod:`backup.anomaly`). Signatures come from the ``filetype`` library; what it does not
recognise is told apart as UTF-8 text, incompressible data (ciphertext, random, already
compressed without a header) or other binary. Readers of older snapshots ignore the field.
A few of the library's signatures are two or three bytes (MP3 and AAC frame syncs): about one
ciphertext in 7,000 is called one of those, which moves a share of many files by nothing.
"""

from __future__ import annotations

import zlib

import filetype
from filetype.types import TYPES
from filetype.types.document import ZippedDocumentBase

#: the entry field the type is recorded in
FIELD = "ctype"
#: bytes looked at: ``filetype`` reads at most this many itself
HEAD_BYTES = 8192
TEXT = "text/plain"
#: no signature, does not compress: what encryption leaves
DATA = "data"
#: no signature, compresses, not text
BINARY = "binary"
EMPTY = "empty"
#: how every ZIP file starts: the office-document matchers (OOXML, ODF) search the first
#: 6,000 bytes for it and answer only when it is at offset 0, so a head that does not start
#: with it is matched without them: the same type, without six scans of every file's head
ZIP_MAGIC = b"PK\x03\x04"
_NOT_ZIP_DOCUMENTS = [m for m in TYPES if not isinstance(m, ZippedDocumentBase)]
#: types that say nothing about what the file was meant to be
UNKNOWN = frozenset({DATA, BINARY, EMPTY})
#: below this many bytes zlib's own overhead hides whether the bytes compress
_MIN_ENTROPY_BYTES = 256
#: bytes compressed to tell ciphertext: 2 KiB tells it as surely as 8 and costs a quarter
_ENTROPY_BYTES = 2048
#: compressed / raw at zlib level 1 above which a head counts as incompressible
_INCOMPRESSIBLE = 0.95


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a head cut in the middle of a multi-byte character is still text
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
    return b"\x00" not in head


def content_type(first: bytes | memoryview) -> str:
    """The content type of a file whose first bytes (its first chunk, or more) are ``first``."""
    head = bytes(first[:HEAD_BYTES])
    if not head:
        return EMPTY
    match = filetype.match(head, matchers=TYPES if head.startswith(ZIP_MAGIC) else _NOT_ZIP_DOCUMENTS)
    if match is not None:
        return str(match.mime)
    if _is_text(head):
        return TEXT
    sample = head[:_ENTROPY_BYTES]
    if len(sample) >= _MIN_ENTROPY_BYTES and len(zlib.compress(sample, 1)) >= _INCOMPRESSIBLE * len(sample):
        return DATA
    return BINARY


def type_lost(before: str | None, after: str | None) -> bool:
    """A file of a known type that no longer looks like any: the in-place encryption pattern.

    A file emptied is not counted: log rotation truncates files every day, and an empty file
    holds no ciphertext."""
    return before is not None and before not in UNKNOWN and after in (DATA, BINARY)
