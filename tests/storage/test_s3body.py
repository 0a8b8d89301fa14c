"""storage/s3body.py: the request body botocore and urllib3 read an S3 upload from.

It keeps the ``io.RawIOBase`` contract whatever the caller asks, in any order: a ``read(n)``
returns at most ``n`` bytes, ``read()`` and ``read(-1)`` the rest, ``readinto`` fills what it
can; together the reads give back exactly the body, and a seek rewinds it for a retry.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.s3body import BodyReader

#: what a reader asks for: read(n), read(), read(-1), read(None), readinto(n bytes), seek(offset)
Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-2, 300_000)),
        st.tuples(st.just("readinto"), st.integers(0, 300_000)),
        st.tuples(st.just("seek"), st.integers(-10, 1_100_000)),
    ),
    max_size=30,
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(size=st.integers(0, 1_000_000), plan=steps)
def test_every_read_keeps_the_raw_io_contract(size: int, plan: list[Step]) -> None:
    data = bytes(i % 251 for i in range(size))
    body = BodyReader(memoryview(data))
    assert len(body) == size
    pos = 0
    for op, n in plan:
        left = size - pos
        if op == "read":
            chunk = body.read(None if n == -2 else n)
            expected = left if n < 0 else min(n, left)
            assert len(chunk) == expected and bytes(chunk) == data[pos : pos + expected]
        elif op == "readinto":
            buffer = bytearray(b"\xff" * n)
            got = body.readinto(buffer)
            assert got == min(n, left)
            assert bytes(buffer[:got]) == data[pos : pos + got] and buffer[got:] == b"\xff" * (n - got)
            expected = got
        else:
            expected = 0
            pos = body.seek(n) if n >= 0 else body.seek(n, io.SEEK_END)
            assert pos == max(0, min(size, n if n >= 0 else size + n))
        pos += expected
        assert body.tell() == pos
    assert bytes(body.read()) == data[pos:]
    assert body.read(1) == b"" and body.read() == b"" and body.readinto(bytearray(4)) == 0


def test_urllib3s_block_reads_send_the_body_once_without_copies() -> None:
    data = bytes(range(256)) * 40_000
    body = BodyReader(memoryview(data))
    blocks = list(iter(lambda: body.read(128 * 1024), b""))
    assert all(isinstance(b, memoryview) and len(b) <= 128 * 1024 for b in blocks)
    assert b"".join(blocks) == data
    assert body.seek(0) == 0 and bytes(body.read()) == data  # botocore rewinds before a retry


def test_a_closed_body_refuses_reads() -> None:
    body = BodyReader(memoryview(b"abc"))
    body.close()
    with pytest.raises(ValueError):
        body.read(1)
