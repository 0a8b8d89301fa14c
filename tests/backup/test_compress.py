"""Blob compression: stored compressed only where it pays, always decoded back byte for byte."""

from __future__ import annotations

import random

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.compress import decode, encode
from backup.errors import CorruptObject
from backup.pack import FLAG_ZSTD


def _noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=4096),
            st.builds(lambda b, k: b * k, st.binary(min_size=1, max_size=64), st.integers(1, 2000)),
        ),
        max_size=12,
    )
)
def test_every_payload_decodes_to_what_was_encoded(parts: list[bytes]) -> None:
    data = b"".join(parts)
    payload, flags = encode(data)
    assert decode(bytes(payload), flags, len(data), "blob x") == data
    if flags & FLAG_ZSTD:
        assert len(payload) < len(data) * 0.97  # compressed only when it saves at least 3%


def test_bytes_that_do_not_shrink_are_stored_as_they_are() -> None:
    data = _noise(1 << 20, 1)
    payload, flags = encode(data)
    assert flags == 0 and bytes(payload) == data


def test_a_repeat_anywhere_in_a_one_mebibyte_chunk_is_found() -> None:
    # a 700 KiB block (a little text, then noise) twice: the second copy sits 700 KiB back,
    # beyond a 512 KiB window; the window spans a whole average chunk, so the chunk stores in
    # about half its size instead of not shrinking at all
    block = "那珂市 住民基本台帳\n".encode() * 600 + _noise(684 * 1024, 2)
    data = block + block
    payload, flags = encode(data)
    assert flags & FLAG_ZSTD and len(payload) < 0.6 * len(data)
    assert decode(bytes(payload), flags, len(data), "blob x") == data


def test_blobs_compressed_with_other_parameters_still_decode() -> None:
    # repositories hold blobs from every earlier compressor setting: decoding depends on none
    data = ("住民基本台帳,那珂市,2026-12-06\n" * 20000).encode()
    for params in (
        zstandard.ZstdCompressionParameters.from_level(1, hash_log=16, source_size=1 << 20),
        zstandard.ZstdCompressionParameters.from_level(3),
    ):
        frame = zstandard.ZstdCompressor(compression_params=params).compress(data)
        assert decode(frame, FLAG_ZSTD, len(data), "blob x") == data


@pytest.mark.parametrize("claimed", [-1, +1])
def test_a_frame_of_another_length_than_indexed_is_named_corrupt(claimed: int) -> None:
    data = b"abc" * 10000
    payload, flags = encode(data)
    with pytest.raises(CorruptObject, match="blob x"):
        decode(bytes(payload), flags, len(data) + claimed, "blob x")
