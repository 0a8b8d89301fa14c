"""storage/naming.py: content names and the digests replication and S3 uploads check them with."""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.naming import content_name, digests_of


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.binary(max_size=70_000), st.sampled_from(["bytes", "bytearray", "memoryview"]))
def test_digests_are_hashlibs_for_every_buffer_type(data: bytes, kind: str) -> None:
    body = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data)}[kind]
    found = digests_of(body, md5=True)
    assert found.sha256 == hashlib.sha256(data).digest() and found.hex == hashlib.sha256(data).hexdigest()
    assert found.md5 == hashlib.md5(data, usedforsecurity=False).digest()
    assert digests_of(body).md5 is None  # only when asked


def test_a_mapped_object_hashes_to_its_content_name(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    name = hashlib.sha256(data).hexdigest()
    path = tmp_path / name
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as view:
        assert digests_of(view).hex == content_name(f"data/{name[:2]}/{name}")
