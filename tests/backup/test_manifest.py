"""The signed repository manifest: signing needs the key, verifying needs only the public key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup.crypto import MasterKey
from backup.manifest import (
    MANIFEST_KEY,
    ManifestInvalid,
    public_key_hex,
    read_manifest,
    sign_manifest,
    signing_key,
    verify_manifest,
)
from backup.opening import open_repository
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.replication import primary


@pytest.fixture(params=[1, 2], ids=["format-1", "format-2"])
def repo_dir(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[LocalBackend, Path]:
    backend = LocalBackend(tmp_path / "repo", create=True)
    primary.init(backend, manifest_format=request.param)
    return backend, primary.write_tree(tmp_path / "data", files=3, size=50_000)


def test_manifest_lists_the_committed_state(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, data = repo_dir
    first, _ = primary.backup(backend, data, system="goka-juki")
    second, manifest = primary.backup(backend, data, system="naka-juki")
    assert manifest is not None
    assert manifest.snapshot_ids == {first, second}
    assert {e.system for e in manifest.snapshots} == {"goka-juki", "naka-juki"}
    on_disk_packs = {i.key: i.size for i in backend.list("data/")} | {i.key: i.size for i in backend.list("meta/")}
    assert manifest.packs == on_disk_packs
    assert set(manifest.indexes) == {i.key.removeprefix("index/") for i in backend.list("index/")}
    assert set(manifest.keys) == {i.key for i in backend.list("keys/")}
    assert set(manifest.newest_by_system()) == {"goka-juki", "naka-juki"}


def test_verification_needs_only_the_public_key(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, data = repo_dir
    _, manifest = primary.backup(backend, data)
    assert manifest is not None
    raw = backend.load(MANIFEST_KEY)
    again = verify_manifest(raw, public_key=manifest.public_key, repo_id=manifest.repository, load=backend.load)
    assert again == manifest
    assert again.digest == manifest.digest


def test_every_key_holder_derives_the_same_signing_key(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, _ = repo_dir
    with open_repository(backend, PASSWORD) as repo:
        one = public_key_hex(signing_key(repo.master, repo.config.id))
    with open_repository(backend, PASSWORD) as repo:
        two = public_key_hex(signing_key(repo.master, repo.config.id))
    other = public_key_hex(signing_key(MasterKey.generate(), repo.config.id))
    assert one == two != other


def test_sequence_only_grows_even_when_the_clock_goes_back(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, _ = repo_dir
    now = datetime.now(UTC)
    with open_repository(backend, PASSWORD) as repo:
        a = sign_manifest(repo, now=now)
        b = sign_manifest(repo, now=now - timedelta(days=30))
        backend.remove(MANIFEST_KEY)  # lost manifest: the clock still keeps it ahead
        c = sign_manifest(repo, now=now + timedelta(seconds=1))
    assert a.sequence < b.sequence < c.sequence


@pytest.mark.parametrize(
    "tamper",
    [
        lambda doc: doc.update(signature="00" * 64),
        lambda doc: doc.update(
            body=doc["body"].replace(
                '"snapshots":[',
                '"snapshots":[{"id":"' + "ab" * 32 + '","time":"2026-01-01T00:00:00+00:00","system":"x"},',
                1,
            )
        ),
        lambda doc: doc.update(body=doc["body"].replace('"sequence":', '"sequence":9', 1)),
    ],
    ids=["bad-signature", "forged-snapshot", "bumped-sequence"],
)
def test_any_change_to_the_signed_body_is_detected(repo_dir: tuple[LocalBackend, Path], tamper) -> None:  # type: ignore[no-untyped-def]
    backend, data = repo_dir
    _, manifest = primary.backup(backend, data)
    assert manifest is not None
    doc = json.loads(backend.load(MANIFEST_KEY))
    tamper(doc)
    with pytest.raises(ManifestInvalid):
        verify_manifest(
            json.dumps(doc).encode(), public_key=manifest.public_key, repo_id=manifest.repository, load=backend.load
        )


def test_a_manifest_signed_by_another_key_is_refused_when_a_key_is_pinned(tmp_path: Path) -> None:
    one, two = LocalBackend(tmp_path / "one", create=True), LocalBackend(tmp_path / "two", create=True)
    primary.init(one)
    primary.init(two)
    pinned = primary.sign(one).public_key
    primary.sign(two)
    foreign = two.load(MANIFEST_KEY)
    with pytest.raises(ManifestInvalid, match="not the pinned key"):
        verify_manifest(foreign, public_key=pinned, repo_id=None)
    with pytest.raises(ManifestInvalid, match="belongs to repository"):
        verify_manifest(foreign, public_key=None, repo_id=primary.sign(one).repository)


def test_truncated_or_garbage_manifest_is_one_clear_error(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, _ = repo_dir
    manifest = primary.sign(backend)
    raw = backend.load(MANIFEST_KEY)
    for bad in (raw[: len(raw) // 2], b"", b"\x00" * 40, b'{"format": "bcpctl-manifest"}'):
        with pytest.raises(ManifestInvalid) as excinfo:
            verify_manifest(bad, public_key=manifest.public_key, repo_id=manifest.repository, load=backend.load)
        assert "\n" not in excinfo.value.message


def test_read_manifest_of_an_unsigned_repository_is_none(repo_dir: tuple[LocalBackend, Path]) -> None:
    backend, _ = repo_dir
    fresh = read_manifest(backend, public_key=None, repo_id=None)
    assert fresh is not None and not fresh.snapshots and len(fresh.keys) == 1, "init signs its first key slot"
    backend.remove(MANIFEST_KEY)
    assert read_manifest(backend, public_key=None, repo_id=None) is None
