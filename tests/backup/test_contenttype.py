"""Content types from first bytes: every kind of document is known by its content, whatever its
name, and its ciphertext by none."""

from __future__ import annotations

import io
import os
import random
import zipfile

import filetype
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.contenttype import (
    BINARY,
    DATA,
    EMPTY,
    HEAD_BYTES,
    TEXT,
    UNKNOWN,
    ZIP_MAGIC,
    content_type,
    type_lost,
)
from tests.backup.documents import MAKERS, encrypted

_KINDS = st.sampled_from(sorted(MAKERS))


@settings(max_examples=40, derandomize=True, deadline=None)
@given(kind=_KINDS, seed=st.integers(0, 2**32))
def test_documents_are_known_by_content_and_their_ciphertext_by_none(kind: str, seed: int) -> None:
    make, mime = MAKERS[kind]
    document = make(random.Random(seed))
    assert content_type(document) == mime
    assert content_type(encrypted(document, seed)) == DATA
    assert type_lost(mime, content_type(encrypted(document, seed)))


@settings(max_examples=30, derandomize=True, deadline=None)
@given(kind=_KINDS, seed=st.integers(0, 2**32), tail=st.binary(max_size=4096))
def test_only_the_head_counts(kind: str, seed: int, tail: bytes) -> None:
    """The backup looks at the first chunk only: what follows the head never changes the type."""
    document = MAKERS[kind][0](random.Random(seed))
    document *= 1 + 2 * HEAD_BYTES // len(document)
    head = document[:HEAD_BYTES]
    assert content_type(head + tail) == content_type(document[: HEAD_BYTES * 2]) == content_type(memoryview(head))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(data=st.binary(max_size=3000))
def test_any_bytes_get_a_type_and_short_ones_are_never_called_ciphertext(data: bytes) -> None:
    kind = content_type(data)
    assert isinstance(kind, str) and kind
    if len(data) < 256:
        assert kind != DATA


def test_text_cut_inside_a_character_is_still_text() -> None:
    body = ("住民票の写し\n" * 2000).encode()
    assert content_type(body[: HEAD_BYTES - 1]) == TEXT
    assert content_type(b"") == EMPTY
    assert content_type(b"\x00" * 4096) == BINARY
    assert content_type(os.urandom(4096)) == DATA


def test_only_a_known_type_becoming_none_counts() -> None:
    assert type_lost("application/pdf", DATA)
    assert type_lost(TEXT, BINARY)
    # a blob that was never a known type (a scan archive of random bytes), and type changes
    # between known types (a CSV saved as xlsx), are not the encryption pattern
    assert not type_lost(DATA, DATA)
    assert not type_lost(TEXT, EMPTY)  # a log truncated by rotation
    assert not type_lost(TEXT, "application/pdf")
    assert not type_lost(None, DATA)
    assert not type_lost("image/png", None)
    assert all(not type_lost(u, v) for u in UNKNOWN for v in UNKNOWN)


def _zip(entries: list[tuple[str, bytes]], prefix: bytes = b"") -> bytes:
    """A ZIP whose members are in this order (the first decides ODF and EPUB), after ``prefix``."""
    out = io.BytesIO()
    out.write(prefix)
    with zipfile.ZipFile(out, "a" if prefix else "w") as z:
        for name, body in entries:
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(zipfile.ZipInfo(name, (2026, 4, 1, 0, 0, 0)), body, compress_type=method)
    return out.getvalue()


_XML = b'<?xml version="1.0"?><x/>'
#: documents in ZIP containers, each with the type it must get
_ZIPPED: dict[str, tuple[bytes, str]] = {
    "docx": (
        _zip([("[Content_Types].xml", _XML), ("_rels/.rels", _XML), ("word/document.xml", _XML)]),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "pptx": (
        _zip([("[Content_Types].xml", _XML), ("docProps/app.xml", _XML), ("ppt/presentation.xml", _XML)]),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    "xlsx-first": (
        _zip([("xl/workbook.xml", _XML), ("[Content_Types].xml", _XML)]),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "odt": (
        _zip([("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", _XML)]),
        "application/vnd.oasis.opendocument.text",
    ),
    "ods": (
        _zip([("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"), ("content.xml", _XML)]),
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    "odp": (
        _zip([("mimetype", b"application/vnd.oasis.opendocument.presentation"), ("content.xml", _XML)]),
        "application/vnd.oasis.opendocument.presentation",
    ),
    "epub": (_zip([("mimetype", b"application/epub+zip"), ("content.opf", _XML)]), "application/epub+zip"),
    "jar": (_zip([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"), ("A.class", b"\xca\xfe")]), "application/zip"),
    # an OOXML-looking ZIP without the part that names its kind: a plain ZIP
    "ooxml-unnamed": (_zip([("[Content_Types].xml", _XML), ("other.xml", _XML)]), "application/zip"),
    # a ZIP behind a stub (self-extracting): the signature inside the head, not at its start
    "sfx": (_zip([("word/document.xml", _XML)], prefix=b"MZ" + bytes(300)), "application/x-msdownload"),
    # a ZIP after other bytes (a ZIP appended to a log): the signature well inside the head
    "appended-zip": (b"notes\n" * 100 + _zip([("word/document.xml", _XML)]), BINARY),
}


def _corpus() -> list[bytes]:
    files = [body for body, _ in _ZIPPED.values()]
    for make, _ in MAKERS.values():
        files += [make(random.Random(seed)) for seed in range(3)]
    files += [encrypted(f, i) for i, f in enumerate(list(files))]
    return files


def test_zipped_documents_get_their_own_types() -> None:
    """The corpus below really reaches every ZIP-document matcher (else its sameness proves nothing)."""
    assert {name: content_type(body) for name, (body, _) in _ZIPPED.items()} == {
        name: mime for name, (_, mime) in _ZIPPED.items()
    }


def _library_type(data: bytes) -> str:
    """The type with every ``filetype`` matcher tried on every head (what skipping ZIP-document
    checks for heads not starting like a ZIP must never change)."""
    return filetype.guess_mime(data[:HEAD_BYTES]) or content_type(data)


def test_the_zip_shortcut_changes_no_type() -> None:
    for data in _corpus():
        assert content_type(data) == _library_type(data)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    kind=st.sampled_from(sorted(_ZIPPED)),
    cut=st.integers(0, 600),
    prefix=st.binary(max_size=64),
    flip=st.integers(0, 599),
)
def test_no_head_cut_prefixed_or_damaged_zip_changes_type(kind: str, cut: int, prefix: bytes, flip: int) -> None:
    """Heads near a ZIP's: cut short, shifted by a prefix, one byte of the first 600 changed."""
    body = _ZIPPED[kind][0]
    damaged = bytearray(body)
    damaged[flip % len(body)] ^= 0xFF
    for data in (body[:cut], prefix + body, bytes(damaged), ZIP_MAGIC + prefix):
        assert content_type(data) == _library_type(data)
