"""Index files round-trip and reject garbage."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.errors import CorruptObject
from backup.index import IndexedPack, IndexFile, decode_index, encode_index
from backup.pack import BlobEntry

entries = st.builds(
    BlobEntry,
    id=st.binary(min_size=32, max_size=32),
    type=st.integers(0, 1),
    flags=st.integers(0, 1),
    offset=st.integers(0, 2**40),
    length=st.integers(0, 2**31),
    raw_length=st.integers(0, 2**31),
)
packs = st.builds(
    IndexedPack,
    name=st.binary(min_size=32, max_size=32).map(bytes.hex),
    blob_type=st.integers(0, 1),
    salt=st.binary(min_size=32, max_size=32),
    size=st.integers(0, 2**40),
    entries=st.lists(entries, max_size=10).map(tuple),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(packs, max_size=6).map(tuple), st.lists(st.binary(min_size=32, max_size=32).map(bytes.hex), max_size=3))
def test_round_trip(index_packs: tuple[IndexedPack, ...], supersedes: list[str]) -> None:
    index = IndexFile(index_packs, tuple(supersedes))
    assert decode_index(encode_index(index), "index") == index


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(CorruptObject):
        decode_index(data, "index/x")


def test_truncated_is_refused() -> None:
    import zstandard

    index = IndexFile(
        (IndexedPack(os.urandom(32).hex(), 0, os.urandom(32), 100, (BlobEntry(os.urandom(32), 0, 0, 40, 20, 4),)),)
    )
    raw = zstandard.ZstdDecompressor().decompress(encode_index(index))
    with pytest.raises(CorruptObject):
        decode_index(zstandard.ZstdCompressor().compress(raw[:-3]), "index/x")
