"""Files of an unpack forced to disk behind it (backup/syncbehind.py): every regular file the
unpack wrote, at the name it wrote, and nothing reached through a link."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from backup.syncbehind import synced_behind


def _tar(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """(name, content or None for a directory, link target or None) in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o600
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_every_file_the_unpack_wrote_is_fsynced_and_the_tree_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: set[int] = set()
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.add(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    data = _tar(
        [("base", None, None), ("base/1", b"a" * 70000, None), ("global/pg_control", b"c" * 8192, None),
         ("PG_VERSION", b"15\n", None), ("link", None, "PG_VERSION"), ("last", b"", None)]
    )  # fmt: skip
    plain, behind = tmp_path / "plain", tmp_path / "behind"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        tar.extractall(plain, filter="data")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        tar.extractall(behind, members=synced_behind(tar, behind), filter="data")
    files = {p.relative_to(behind): p for p in behind.rglob("*") if p.is_file() and not p.is_symlink()}
    assert {p.relative_to(plain): p.read_bytes() for p in plain.rglob("*") if p.is_file()} == {
        rel: p.read_bytes() for rel, p in files.items()
    } | {Path("link"): b"15\n"}
    assert (behind / "link").is_symlink()
    wanted = {p.stat().st_ino for p in files.values()}
    deadline = time.monotonic() + 30
    while not wanted <= synced and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wanted <= synced  # the last member too, though nothing was asked for after it


def test_a_name_that_is_a_link_when_synced_is_never_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"not the unpack's")
    synced: set[int] = set()
    monkeypatch.setattr(os, "fsync", lambda fd: synced.add(os.fstat(fd).st_ino))
    data = _tar([("f", b"x", None)])
    into = tmp_path / "into"
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        members = synced_behind(tar, into)
        member = next(members)
        # swapped for a link after it was written: the sync must not reach through it
        (into / "f").symlink_to(outside)
        assert next(members, None) is None
    time.sleep(0.3)
    assert member.name == "f" and outside.stat().st_ino not in synced
