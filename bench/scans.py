"""Incompressible file bodies: scanned application forms (PDF/TIFF wrappers around JPEG-like
noise) and small photos.

The body is a keyed BLAKE3 XOF stream: deterministic per (seed, path, revision), generated at
well over 500 MB/s, and as incompressible as the DCT-compressed images a document scanner
writes, which is the point: zstd gains nothing on them and a backup tool should notice.
"""

from __future__ import annotations

import hashlib

import blake3


def noise(seed: int, name: str, n: int) -> bytes:
    key = hashlib.sha256(f"bench-noise\0{seed}\0{name}".encode()).digest()
    return blake3.blake3(key=key).digest(length=n)


def scan_bytes(seed: int, name: str, size: int) -> bytes:
    """A scanned form of exactly ``size`` bytes."""
    if name.endswith(".tif"):
        head = b"II*\x00\x08\x00\x00\x00"
        tail = b""
    else:
        head = (
            b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /XObject /Subtype /Image /Width 2480 /Height 3508 "
            b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode >>\nstream\n"
        )
        tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    body = max(0, size - len(head) - len(tail))
    return (head + noise(seed, name, body) + tail)[:size]


def image_bytes(seed: int, name: str, size: int) -> bytes:
    """A small photo (PNG or JPEG signature over noise) of exactly ``size`` bytes."""
    head = b"\x89PNG\r\n\x1a\n" if name.endswith(".png") else b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    return (head + noise(seed, name, max(0, size - len(head))))[:size]
