"""Content types from first bytes: every kind of document is known by its content, whatever its
name, and its ciphertext by none."""

from __future__ import annotations

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.contenttype import BINARY, DATA, EMPTY, HEAD_BYTES, TEXT, UNKNOWN, content_type, type_lost
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
