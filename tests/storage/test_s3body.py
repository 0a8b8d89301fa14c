"""storage/s3body.py: the request body botocore and urllib3 read an S3 upload from."""

from __future__ import annotations

import io

from storage.s3body import SEND_SLICE, BodyReader


def test_reads_hand_out_large_slices_of_the_same_bytes_and_rewind_for_a_retry() -> None:
    data = bytes(range(256)) * (3 * SEND_SLICE // 256 + 7)
    body = BodyReader(memoryview(data))
    assert len(body) == len(data)
    first = body.read(128 * 1024)  # what urllib3 asks for
    assert len(first) == SEND_SLICE and bytes(first) == data[:SEND_SLICE]
    rest = b"".join(bytes(chunk) for chunk in iter(lambda: body.read(128 * 1024), b""))
    assert bytes(first) + rest == data
    assert body.read(10) == b"" and body.tell() == len(data)
    assert body.seek(0) == 0  # botocore rewinds the body before a retry
    assert bytes(body.read()) == data
    assert body.seek(-5, io.SEEK_END) == len(data) - 5 and bytes(body.read()) == data[-5:]


def test_an_empty_body_reads_as_end_of_file_at_once() -> None:
    body = BodyReader(memoryview(b""))
    assert len(body) == 0 and not body.read(8192)
