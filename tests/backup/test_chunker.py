"""Content-defined chunking: lossless, deterministic, keyed, and local under edits."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.chunker import chunks, chunks_of_buffer
from backup.repository import ChunkerParams

SMALL = ChunkerParams(avg=4096, min=1024, max=16384)


def cut(data: bytes, seed: int = 7, params: ChunkerParams = SMALL) -> list[bytes]:
    return [bytes(c) for c in chunks(io.BytesIO(data), params, seed)]


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200_000), st.integers(1, 2**63 - 1))
def test_chunks_concatenate_to_input(data: bytes, seed: int) -> None:
    parts = cut(data, seed)
    assert b"".join(parts) == data
    assert all(len(p) <= SMALL.max for p in parts)
    assert all(len(p) >= SMALL.min for p in parts[:-1])


class Trickle(io.RawIOBase):
    """A pipe-like stream: short, uneven reads."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.rng = data, 0, random.Random(5)

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:  # type: ignore[no-untyped-def]
        n = min(len(view), self.rng.randint(1, 5000), len(self.data) - self.pos)
        view[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=300_000), st.integers(1, 2**63 - 1))
def test_block_reads_cut_exactly_like_one_buffer(data: bytes, seed: int) -> None:
    """Carrying the last chunk of every block must not move a single boundary."""
    whole = [bytes(c) for c in chunks_of_buffer(data, SMALL, seed)]
    assert [bytes(c) for c in chunks(io.BytesIO(data), SMALL, seed, block=SMALL.max)] == whole
    assert [bytes(c) for c in chunks(Trickle(data), SMALL, seed, block=SMALL.max)] == whole


def test_stream_and_buffer_agree() -> None:
    data = random.Random(1).randbytes(3_000_000)
    assert [bytes(c) for c in chunks(io.BytesIO(data), SMALL, 7, block=20_000)] == [
        bytes(c) for c in chunks_of_buffer(data, SMALL, 7)
    ]


def test_seed_changes_boundaries() -> None:
    data = random.Random(2).randbytes(400_000)
    assert [len(c) for c in cut(data, 1)] != [len(c) for c in cut(data, 99991)]


def test_an_insertion_only_changes_nearby_chunks() -> None:
    rng = random.Random(3)
    data = rng.randbytes(1_000_000)
    edited = data[:500_000] + b"inserted record" + data[500_000:]
    before, after = set(cut(data)), set(cut(edited))
    changed = len(after - before)
    assert changed <= 3, f"{changed} chunks changed for one 15-byte insertion"
    assert len(after & before) >= len(before) - 3
