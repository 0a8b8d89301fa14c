"""Packs round-trip any blobs, and any flipped or missing byte is caught."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.crypto import MasterKey
from backup.errors import CorruptObject
from backup.pack import BLOB_DATA, BLOB_TREE, FLAG_ZSTD, PackBuilder, iter_blobs, parse_pack

MASTER = MasterKey.generate()
REPO_ID = os.urandom(16)

blobs = st.lists(st.binary(min_size=0, max_size=2048), min_size=1, max_size=20, unique=True)


def build(items: list[bytes], blob_type: int = BLOB_DATA):
    builder = PackBuilder(MASTER, REPO_ID, blob_type)
    for i, data in enumerate(items):
        builder.add(MASTER.chunk_id_of(data), data, FLAG_ZSTD if i % 2 else 0, len(data))
    return builder.finish()


@settings(max_examples=60, deadline=None)
@given(blobs, st.sampled_from([BLOB_DATA, BLOB_TREE]))
def test_round_trip(items: list[bytes], blob_type: int) -> None:
    pack = build(items, blob_type)
    out = list(iter_blobs(MASTER, REPO_ID, bytes(pack.data), "pack"))
    assert [payload for _entry, payload in out] == items
    assert [entry.id for entry, _ in out] == [MASTER.chunk_id_of(d) for d in items]
    assert all(entry.type == blob_type for entry, _ in out)
    assert pack.entries == tuple(entry for entry, _ in out)


@settings(max_examples=40, deadline=None)
@given(blobs, st.data())
def test_any_flipped_bit_is_detected(items: list[bytes], data: st.DataObject) -> None:
    raw = bytearray(build(items).data)
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(CorruptObject):
        list(iter_blobs(MASTER, REPO_ID, bytes(raw), "pack"))


@settings(max_examples=40, deadline=None)
@given(blobs, st.data())
def test_truncation_is_detected(items: list[bytes], data: st.DataObject) -> None:
    raw = bytes(build(items).data)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(CorruptObject):
        list(iter_blobs(MASTER, REPO_ID, raw[:cut], "pack"))


def test_wrong_key_or_repository_fails() -> None:
    raw = bytes(build([b"resident data"]).data)
    with pytest.raises(CorruptObject):
        parse_pack(MasterKey.generate(), REPO_ID, raw, "pack")
    with pytest.raises(CorruptObject):
        parse_pack(MASTER, os.urandom(16), raw, "pack")


def test_pack_name_is_sha256_of_bytes() -> None:
    import hashlib

    pack = build([b"a", b"b"])
    assert pack.name == hashlib.sha256(pack.data).hexdigest()
    assert pack.key.startswith(f"data/{pack.name[:2]}/")
