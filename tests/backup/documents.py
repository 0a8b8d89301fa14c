"""Real office documents for the content-type tests, written by the libraries that make them
(pypdf, XlsxWriter, the standard library): a different file on every seed, the same bytes for
the same seed, so a test's ciphertext is the same on every run."""

from __future__ import annotations

import gzip
import io
import os
import random
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import xlsxwriter
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_WORDS = ["住民票", "転入", "転出", "世帯主", "五霞町", "小福田", "川妻", "令和8年", "異動届", "納付済"]


def pdf(rng: random.Random) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(rng.randint(1, 4)):
        writer.add_blank_page(595, 842)
    writer.add_metadata({"/Title": " ".join(rng.choices(_WORDS, k=8)), "/Subject": str(rng.random())})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def xlsx(rng: random.Random) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"created": datetime(2026, 4, 1, tzinfo=UTC)})  # the same bytes for the same seed
    sheet = book.add_worksheet()
    for i in range(rng.randint(50, 400)):
        sheet.write_row(i, 0, [f"{rng.randrange(10**9):09d}", rng.choice(_WORDS), rng.randrange(100000), i])
    book.close()
    return out.getvalue()


def png(rng: random.Random) -> bytes:
    """A PNG (RFC 2083) of a noisy gradient: what a scanner or a phone gives, compressed."""
    width, height = rng.randint(40, 120), rng.randint(40, 120)
    rows = b"".join(
        b"\x00" + bytes((x + y + rng.randrange(8)) & 0xFF for x in range(width) for _ in range(3))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def gz(rng: random.Random) -> bytes:
    return gzip.compress("".join(f"{rng.choice(_WORDS)},{rng.randrange(10**6)}\n" for _ in range(2000)).encode())


def zipped(rng: random.Random) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("台帳.csv", "".join(f"{rng.choice(_WORDS)},{rng.randrange(10**6)}\n" for _ in range(2000)))
    return out.getvalue()


def sqlite_db(rng: random.Random) -> bytes:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"doc-{rng.randrange(10**12)}-{os.getpid()}.db"
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE t (a TEXT, b INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(rng.choice(_WORDS), i) for i in range(500)])
        conn.commit()
    finally:
        conn.close()
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def text(rng: random.Random) -> bytes:
    return "".join(f"{rng.choice(_WORDS)} {rng.randrange(10**6)}\n" for _ in range(rng.randint(50, 500))).encode()


#: document maker -> the MIME type the content says (never the name)
MAKERS: dict[str, tuple[Callable[[random.Random], bytes], str]] = {
    "pdf": (pdf, "application/pdf"),
    "xlsx": (xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "png": (png, "image/png"),
    "gz": (gz, "application/gzip"),
    "zip": (zipped, "application/zip"),
    "db": (sqlite_db, "application/x-sqlite3"),
    "txt": (text, "text/plain"),
}


def encrypted(data: bytes, seed: int) -> bytes:
    """What ransomware leaves: the AES ciphertext of the same length (a key from ``seed``: about one
    ciphertext in 7,000 starts like a format ``filetype`` knows by two or three bytes, MP3 or
    AAC, and a fixed key keeps a test from meeting one on some runs only)."""
    rng = random.Random(seed)
    enc = Cipher(algorithms.AES(rng.randbytes(32)), modes.CTR(rng.randbytes(16))).encryptor()
    return enc.update(data) + enc.finalize()
