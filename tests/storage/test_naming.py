"""storage/naming.py: content names and the digests replication and S3 uploads check them with."""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.naming import content_name, sha256_of


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.binary(max_size=70_000), st.sampled_from(["bytes", "bytearray", "memoryview"]))
def test_the_digest_is_hashlibs_for_every_buffer_type(data: bytes, kind: str) -> None:
    body = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data)}[kind]
    assert sha256_of(body) == hashlib.sha256(data).digest()


def test_a_mapped_object_hashes_to_its_content_name(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    name = hashlib.sha256(data).hexdigest()
    path = tmp_path / name
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as view:
        assert sha256_of(view).hex() == content_name(f"data/{name[:2]}/{name}")
