"""The S3 path of replication/transfer.py: packs read once and hashed once, by the signing pass.

Packs a local source sends to S3 are read into memory and not hashed by the transfer: botocore
signs each body with its SHA-256, the client refuses to send one whose signed hash is not its
name (S3Backend hashes a multipart body against its name first), and the server refuses bytes
that do not hash to the signed value. These tests hold the guarantees to the real Ceph
gateway: a damaged pack is never stored, whatever happens to the file while it is sent the
bytes read are the bytes stored, and one bad object fails alone, never the whole process.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import replication.transfer as transfer_module
import storage.local as local_module
from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import SyncOptions, replicate
from replication.transfer import Transfer
from replication.verify import verify_repository
from storage import s3 as s3_module
from storage.backend import check_key
from storage.errors import NameMismatch
from storage.local import LocalBackend
from storage.metered import MeteredBackend
from storage.naming import Buffer, content_name
from storage.s3body import BodyReader
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
    """In place, never truncating: the transfer may hold a mapping of the file."""
    with open(backend.root / key, "r+b") as f:
        f.seek(at)
        old = f.read(1)
        f.seek(at)
        f.write(bytes([old[0] ^ 0xFF]))


@pytest.mark.s3
def test_a_full_replication_of_read_packs_verifies_at_the_target(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()))
    assert result.ok, result.errors
    packs = [i for i in source.list("") if i.key.startswith(("data/", "meta/"))]
    assert result.phases["packs"].objects == len(packs) > 3
    assert result.bytes_received >= sum(i.size for i in packs)
    for info in packs:
        assert hashlib.sha256(target.load(info.key)).hexdigest() == info.key.rsplit("/", 1)[1]
    report = verify_repository(target)
    assert report.ok, report.problems


@pytest.mark.s3
def test_a_damaged_pack_is_not_replicated(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    pack = next(source.list("data/"))
    _flip_byte(source, pack.key)
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()))
    assert not result.ok and not result.errors
    assert "damaged there" in result.not_intact[pack.key]  # named by the manifest: it waits (holdback)
    assert pack.key not in {i.key for i in target.list("")}
    assert list(target.list("snapshots/")) == []


@pytest.mark.s3
def test_packs_to_s3_are_hashed_once_by_the_signing_pass_not_by_the_transfer(
    source, ceph, s3_env, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    hashed: list[int] = []
    real = transfer_module.sha256_of

    def counting(body: Buffer) -> bytes:
        hashed.append(len(body))
        return real(body)

    monkeypatch.setattr(transfer_module, "sha256_of", counting)
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()))
    assert result.ok, result.errors
    # only what is not named by its hash (config, key slots, manifest links) is hashed here, and
    # the index files, snapshots and links, read and checked before either phase writes one (sync.py)
    unnamed = [i for i in target.list("") if content_name(i.key) is None and i.key != "manifest"]
    prechecked = [i for i in target.list("") if i.key.startswith(("index/", "snapshots/", "manifests/"))]
    assert result.phases["packs"].objects > 3 and len(unnamed) < 8
    assert len(hashed) == len(unnamed) + len(prechecked)
    assert verify_repository(target).ok


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
def test_a_pack_that_grew_after_it_was_listed_is_not_replicated(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    packs = list(source.list("data/"))  # listed at the old size, as the run's plan was
    pack = max(packs, key=lambda i: i.size)
    with open(source.root / pack.key, "ab") as f:
        f.write(b"appended after the listing")
    target = open_backend(s3_url(ceph))
    outcome = Transfer(MeteredBackend(source), target).copy(packs)
    assert "damaged there" in outcome.errors[pack.key]
    assert pack.key not in {i.key for i in target.list("")}


def test_a_damaged_pack_never_reaches_a_target_without_a_server_check(source, tmp_path: Path) -> None:
    pack = max(source.list("data/"), key=lambda i: i.size)
    _flip_byte(source, pack.key)
    target = LocalBackend(tmp_path / "offsite", create=True)
    result = replicate(source, target, Ledger(open_state()))
    assert "damaged there" in result.not_intact[pack.key]
    assert not (target.root / pack.key).exists()


class _NameCheckingTarget(LocalBackend):
    """A directory that checks content names as S3Backend does (``NameChecking``), counting the checks."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, create=True)
        self.checked: list[str] = []

    def checks_name(self, key: str) -> bool:
        return content_name(key) is not None

    def save(self, key: str, data: Buffer, *, retain_until=None) -> None:  # type: ignore[no-untyped-def]
        name = content_name(key)
        if name is not None:
            self.checked.append(key)
            if hashlib.sha256(data).hexdigest() != name:
                raise NameMismatch("{key} does not hash to its name", key=check_key(key))
        super().save(key, data, retain_until=retain_until)


def test_packs_for_a_target_that_checks_names_are_not_hashed_here(
    source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    hashed: list[int] = []
    real = transfer_module.sha256_of
    monkeypatch.setattr(transfer_module, "sha256_of", lambda body: hashed.append(len(body)) or real(body))
    packs = list(source.list("data/"))
    target = _NameCheckingTarget(tmp_path / "offsite")
    outcome = Transfer(source, target).copy(packs)
    assert not outcome.errors and sorted(outcome.copied) == sorted(i.key for i in packs)
    assert sorted(target.checked) == sorted(i.key for i in packs) and hashed == []
    for info in packs:
        assert (target.root / info.key).read_bytes() == (source.root / info.key).read_bytes()


def test_a_target_that_checks_names_reports_a_damaged_pack_as_damage_at_the_source(source, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    packs = list(source.list("data/"))
    damaged = max(packs, key=lambda i: i.size)
    _flip_byte(source, damaged.key)
    target = _NameCheckingTarget(tmp_path / "offsite")
    outcome = Transfer(source, target, jobs=1).copy(packs)
    assert "damaged there" in outcome.errors[damaged.key]
    assert not (target.root / damaged.key).exists()


_MIB = 1024 * 1024


def _pack_of(backend: LocalBackend, data: bytes) -> str:
    name = hashlib.sha256(data).hexdigest()
    return f"data/{name[:2]}/{name}"


def _changed_after_reading(source: LocalBackend, key: str, change: Callable[[], None]) -> list[bool]:
    """Make ``source.load(key)`` change the file right after reading it (another process, a disk)."""
    real = source.load
    done: list[bool] = []

    def load(k: str, offset: int = 0, length: int | None = None) -> bytes:
        data = real(k, offset, length)
        if k == key and not done:
            change()
            done.append(True)
        return data

    source.load = load  # type: ignore[method-assign]
    return done


@pytest.mark.s3
def test_a_pack_grown_past_the_single_put_limit_after_listing_is_stored_as_read(
    source, ceph, s3_env, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # Listed small; replaced by rename with a valid pack past the limit (multipart), then changed
    # in place once read: what was read is hashed against the name and sent.
    monkeypatch.setattr(s3_module, "SINGLE_PUT_LIMIT", 5 * _MIB)
    monkeypatch.setattr(s3_module, "PART_SIZE", 5 * _MIB)  # RGW's minimum part size
    big = os.urandom(6 * _MIB)
    key = _pack_of(source, big)
    path = source.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"small when listed")
    info = next(i for i in source.list("data/") if i.key == key)
    (source.root / "grown").write_bytes(big)
    os.replace(source.root / "grown", path)
    changed = _changed_after_reading(source, key, lambda: _flip_byte(source, key, at=len(big) - 100))
    target = open_backend(s3_url(ceph))
    outcome = Transfer(source, target).copy([info])
    assert changed and outcome.copied == [key], outcome.errors
    assert hashlib.sha256(target.load(key)).hexdigest() == key.rsplit("/", 1)[1]


@pytest.mark.s3
@pytest.mark.parametrize("swapped_in", ["fifo", "symlink to a fifo"])
def test_a_pack_swapped_for_a_fifo_after_listing_is_reported_not_waited_on(
    source, ceph, s3_env, tmp_path: Path, swapped_in: str
) -> None:  # type: ignore[no-untyped-def]
    packs = list(source.list("data/"))
    planted = max(packs, key=lambda i: i.size)
    path = source.root / planted.key
    path.unlink()
    fifo = tmp_path / "fifo" if swapped_in != "fifo" else path
    os.mkfifo(fifo)
    if fifo != path:
        path.symlink_to(fifo)
    target = open_backend(s3_url(ceph))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(Transfer(source, target).copy, packs)
        try:
            outcome = running.result(timeout=30)
        except TimeoutError:
            os.close(os.open(fifo, os.O_RDWR))  # a writer lets the blocked open return
            pytest.fail("the transfer waited for ever on a FIFO")
    assert "not a regular file" in outcome.errors[planted.key]
    assert sorted(outcome.copied) == sorted(i.key for i in packs if i.key != planted.key)


@pytest.mark.s3
@pytest.mark.parametrize("how", ["truncated after listing", "a disk error reading it"])
def test_a_pack_cut_short_or_unreadable_fails_alone_and_the_process_lives(
    source, ceph, s3_env, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:  # type: ignore[no-untyped-def]
    packs = list(source.list("data/"))
    victim = max(packs, key=lambda i: i.size)
    if how == "truncated after listing":
        os.truncate(source.root / victim.key, 10)
    else:
        real_pread = os.pread

        def failing_pread(fd: int, length: int, offset: int) -> bytes:
            if length == victim.size:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_pread(fd, length, offset)

        monkeypatch.setattr(local_module.os, "pread", failing_pread)
    target = open_backend(s3_url(ceph))
    outcome = Transfer(source, target).copy(packs)
    assert list(outcome.errors) == [victim.key] and "\n" not in outcome.errors[victim.key]
    assert ("damaged there" if how.startswith("truncated") else "Input/output error") in outcome.errors[victim.key]
    assert sorted(outcome.copied) == sorted(i.key for i in packs if i.key != victim.key)


@pytest.mark.s3
def test_a_run_after_a_damaged_pack_is_mended_resumes_and_completes(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    pack = max(source.list("data/"), key=lambda i: i.size)
    _flip_byte(source, pack.key)
    target = open_backend(s3_url(ceph))
    ledger = Ledger(open_state())
    first = replicate(source, target, ledger)
    assert not first.ok and "\n" not in first.not_intact[pack.key] and "damaged there" in first.not_intact[pack.key]
    _flip_byte(source, pack.key)  # mended (restored from another copy)
    second = replicate(source, target, ledger)
    assert second.ok, second.errors
    assert hashlib.sha256(target.load(pack.key)).hexdigest() == pack.key.rsplit("/", 1)[1]
    assert verify_repository(target).ok


@pytest.mark.s3
def test_packs_at_and_just_above_the_single_put_limit(source, ceph, s3_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    limit = 5 * _MIB
    monkeypatch.setattr(s3_module, "SINGLE_PUT_LIMIT", limit)
    monkeypatch.setattr(s3_module, "PART_SIZE", limit)  # RGW's minimum part size
    bodies = [os.urandom(limit), os.urandom(limit + 1), os.urandom(limit + 1), os.urandom(limit)]
    keys = [_pack_of(source, body) for body in bodies]
    for key, body in zip(keys, bodies, strict=True):
        (source.root / key).parent.mkdir(parents=True, exist_ok=True)
        (source.root / key).write_bytes(body)
    _flip_byte(source, keys[2], at=limit)  # damaged, above the limit: hashed here
    _flip_byte(source, keys[3], at=limit - 1)  # damaged, at the limit: hashed by the signing pass
    infos = [i for i in source.list("data/") if i.key in keys]
    target = open_backend(s3_url(ceph))
    outcome = Transfer(source, target, stop_on_error=False).copy(infos)
    assert sorted(outcome.copied) == sorted(keys[:2])
    assert all("damaged there" in outcome.errors[key] for key in keys[2:])
    stored = {i.key for i in target.list("data/")}
    assert stored == set(keys[:2])
    for key in keys[:2]:
        assert hashlib.sha256(target.load(key)).hexdigest() == key.rsplit("/", 1)[1]


@pytest.mark.s3
def test_one_damaged_pack_does_not_stop_the_other_packs(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    packs = sorted(source.list("data/"), key=lambda i: -i.size)
    _flip_byte(source, packs[0].key)  # the largest: checked and sent first
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()), SyncOptions(jobs=1))
    assert list(result.not_intact) == [packs[0].key] and "damaged there" in result.not_intact[packs[0].key]
    # every other pack is offsite; the index and snapshots wait until the damaged one is mended
    assert {i.key for i in target.list("data/")} == {i.key for i in packs[1:]}
    assert list(target.list("snapshots/")) == []


@pytest.mark.s3
def test_a_pack_grown_huge_is_left_behind_by_its_listed_size_without_reading_it(source, ceph, s3_env) -> None:  # type: ignore[no-untyped-def]
    pack = max(source.list("data/"), key=lambda i: i.size)
    os.truncate(source.root / pack.key, 256 * _MIB)  # sparse: a damaged file system, a planted file
    target = open_backend(s3_url(ceph))
    result = replicate(source, target, Ledger(open_state()))
    assert not result.ok and "the manifest says" in result.not_intact[pack.key]
    assert result.bytes_received < 256 * _MIB, "never read: it is not in the copy plan"
    # the other packs still go (replication/holdback.py)
    assert {i.key for i in target.list("data/")} == {i.key for i in source.list("data/")} - {pack.key}


@pytest.mark.s3
@pytest.mark.parametrize("how", ["replaced by rename", "changed in place"])
def test_a_pack_changed_at_the_source_during_its_upload_is_stored_as_read(
    source, ceph, s3_env, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:  # type: ignore[no-untyped-def]
    pack = max(source.list("data/"), key=lambda i: i.size)
    real_seek = BodyReader.seek
    changed: list[bool] = []

    def rewound_then_changed(self: BodyReader, offset: int, whence: int = io.SEEK_SET) -> int:
        # botocore rewinds the body after hashing it for the signature: the file changes now
        if len(self) == pack.size and self.tell() == len(self) and not changed:
            if how == "replaced by rename":
                (source.root / "other").write_bytes(os.urandom(pack.size))
                os.replace(source.root / "other", source.root / pack.key)
            else:
                _flip_byte(source, pack.key)
            changed.append(True)
        return real_seek(self, offset, whence)

    monkeypatch.setattr(BodyReader, "seek", rewound_then_changed)
    target = open_backend(s3_url(ceph))
    outcome = Transfer(source, target).copy([pack])
    assert changed and outcome.copied == [pack.key], outcome.errors
    assert hashlib.sha256(target.load(pack.key)).hexdigest() == pack.key.rsplit("/", 1)[1]
