"""The S3 fast path of replication/transfer.py: mapped packs, hashes from before the target opened.

Objects a local source sends to S3 are hashed once (SHA-256 against the name, MD5 beside
it), possibly by replication/prehash.py before the transfer starts, and sent later from a
fresh mapping with that MD5. These tests hold the guarantees to the real Ceph gateway: a
damaged pack is never stored, and bytes that change between the check and the upload are
refused by the server rather than replicated.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

import pytest

from dc.state import open_state
from replication.ledger import Ledger
from replication.prehash import SourceDigests
from replication.sync import replicate
from replication.transfer import Transfer
from replication.verify import verify_repository
from storage.local import LocalBackend
from storage.metered import MeteredBackend
from storage.url import open_backend
from tests.replication import primary
from tests.servers.flipproxy import FlipProxy
from tests.servers.storage import BUCKET, s3_url


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    primary.backup(backend, primary.write_tree(tmp_path / "data", files=12))
    return backend


def _flip_byte(backend: LocalBackend, key: str, at: int = 100) -> None:
    path = backend.root / key
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.s3
def test_a_full_replication_through_mapped_packs_and_early_hashes_verifies_at_the_target(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    known = SourceDigests(source.root).start()
    known.wait()  # every pack hashed before the transfer, as on a slow target open
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()), known=known)
    assert result.ok, result.errors
    packs = [i for i in source.list("") if i.key.startswith(("data/", "meta/"))]
    assert result.phases["packs"].objects == len(packs) > 3
    assert result.bytes_received >= sum(i.size for i in packs)  # mapped reads are counted
    for info in packs:
        assert hashlib.sha256(target.load(info.key)).hexdigest() == info.key.rsplit("/", 1)[1]
    report = verify_repository(target)
    assert report.ok, report.problems


@pytest.mark.s3
def test_a_pack_damaged_before_it_was_hashed_is_not_replicated(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    pack = next(source.list("data/"))
    _flip_byte(source, pack.key)
    known = SourceDigests(source.root).start()
    known.wait()
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()), known=known)
    assert not result.ok
    assert "damaged there" in result.errors[pack.key]
    assert pack.key not in {i.key for i in target.list("")}
    assert list(target.list("snapshots/")) == []


@pytest.mark.s3
def test_bytes_changed_after_the_check_are_refused_by_the_server(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    known = SourceDigests(source.root).start()
    known.wait()
    pack = max(source.list("data/"), key=lambda i: i.size)
    _flip_byte(source, pack.key)  # same size: the early SHA-256 and MD5 describe the old bytes
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()), known=known)
    assert not result.ok
    # BadDigest against the Content-MD5 of the checked bytes, and no retry: they will not change back
    assert "changed after they were checked" in result.errors[pack.key]
    assert pack.key not in {i.key for i in target.list("")}
    assert list(target.list("index/")) == [] and list(target.list("snapshots/")) == []


@pytest.mark.s3
def test_a_byte_flipped_on_the_wire_is_refused_and_the_same_bytes_sent_again(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    url = s3_url(ceph)
    prefix = url.split("?")[0].removeprefix(f"s3://{BUCKET}/")
    with FlipProxy(ceph.rgw_port, f"PUT /{BUCKET}/{prefix}/data/".encode()) as proxy:
        target = open_backend(url.replace(ceph.endpoint, f"http://127.0.0.1:{proxy.port}"))
        try:
            result = replicate(source, target, Ledger(open_state()))
        finally:
            target.close()  # its pooled connections hold the proxy's forwarding threads
    assert proxy.flipped == 1
    assert result.ok, result.errors  # the refused upload was retried, not given up
    direct = open_backend(url)
    for info in source.list("data/"):
        assert hashlib.sha256(direct.load(info.key)).hexdigest() == info.key.rsplit("/", 1)[1]


@pytest.mark.s3
def test_a_pack_that_grew_after_the_early_hash_is_hashed_again(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    known = SourceDigests(source.root).start()
    known.wait()
    packs = list(source.list("data/"))  # listed at the old size, as the run's plan was
    pack = max(packs, key=lambda i: i.size)
    with open(source.root / pack.key, "ab") as f:
        f.write(b"appended after the early hash")
    target = open_backend(s3_url(ceph))
    outcome = Transfer(MeteredBackend(source), target, known=known).copy(packs)
    assert "damaged there" in outcome.errors[pack.key]
    assert pack.key not in {i.key for i in target.list("")}


@pytest.mark.s3
def test_the_few_objects_not_hashed_ahead_are_hashed_by_the_upload_threads(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    class NoWaiting(SourceDigests):
        def join(self) -> None:  # the batch in hand is mostly packs the target has (incremental)
            raise AssertionError("the transfer waited for the early-hash thread")

    known = NoWaiting(source.root).start()
    known.wait()
    packs = [i for i in source.list("") if i.key.startswith(("data/", "meta/"))]
    for info in packs[:2]:  # two packs were not hashed ahead: no more than upload threads
        known.take(info.key, info.size)
    target = open_backend(s3_url(ceph))
    outcome = Transfer(MeteredBackend(source), target, jobs=4, known=known).copy(packs)
    assert outcome.errors == {}
    for info in packs:
        assert hashlib.sha256(target.load(info.key)).hexdigest() == info.key.rsplit("/", 1)[1]


def test_early_hashes_never_reach_targets_that_do_not_check_an_md5(source, tmp_path: Path) -> None:
    known = SourceDigests(source.root).start()
    known.wait()
    pack = max(source.list("data/"), key=lambda i: i.size)
    _flip_byte(source, pack.key)  # a directory target has no server check: the bytes are hashed again
    target = LocalBackend(tmp_path / "offsite", create=True)
    result = replicate(source, target, Ledger(open_state()), known=known)
    assert "damaged there" in result.errors[pack.key]
    assert not (target.root / pack.key).exists()


def test_early_hashing_takes_the_packs_of_the_newest_backup_first(source, tmp_path: Path) -> None:
    # an incremental run needs exactly the packs written since the last one
    packs = lambda: {i.key for i in source.list("") if i.key.startswith(("data/", "meta/"))}  # noqa: E731
    old = packs()
    for key in old:
        os.utime(source.root / key, (1_000_000_000, 1_000_000_000))
    primary.backup(source, primary.write_tree(tmp_path / "more", files=6, seed=9))
    new = packs() - old
    order = [key for _, _, key in SourceDigests(source.root)._packs()]
    assert new and set(order[: len(new)]) == new


def test_stopped_before_it_starts_it_hashes_nothing(source) -> None:  # type: ignore[no-untyped-def]
    known = SourceDigests(source.root)
    known.stop()
    known.start().wait()
    assert all(known.take(i.key, i.size) is None for i in source.list("data/"))


class _Md5CheckingTarget(LocalBackend):
    """A directory that takes Content-MD5 hints the way S3Backend does (no server check here)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, create=True)
        self.hints: dict[str, bytes] = {}

    def expect_md5(self, key: str, size: int, md5: bytes) -> None:
        self.hints[key] = md5


def test_a_source_that_cannot_be_mapped_is_read_instead(source, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class NoMapping(mmap.mmap):
        def __new__(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError("this filesystem cannot map files")

    monkeypatch.setattr(mmap, "mmap", NoMapping)
    packs = list(source.list("data/"))
    target = _Md5CheckingTarget(tmp_path / "offsite")
    outcome = Transfer(source, target).copy(packs)
    assert not outcome.errors and sorted(outcome.copied) == sorted(i.key for i in packs)
    for info in packs:
        raw = (source.root / info.key).read_bytes()
        assert (target.root / info.key).read_bytes() == raw
        assert target.hints[info.key] == hashlib.md5(raw, usedforsecurity=False).digest()
