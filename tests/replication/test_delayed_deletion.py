"""Routine retention never raises a forgery alarm at the offsite, and planting still does.

``forget`` at the primary, then ``replicate``: the offsite keeps the removed snapshots for its
delete delay. ``verify-offsite`` must say so ("N snapshot(s) removed at the primary, kept
offsite until …") and exit 0, while a snapshot that no signed manifest ever listed is still
reported as planted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.manifest import (
    REMOVED_KEPT,
    Manifest,
    ManifestInvalid,
    RemovedSnapshot,
    SnapshotEntry,
    encode_signed,
    index_set_digest,
    removed_since,
    verify_manifest,
)
from storage.local import LocalBackend
from tests.replication import primary
from tests.replication.test_cli import ok
from tests.servers.storage import LOCKED_BUCKET, s3_url

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["local", pytest.param("s3-locked", marks=pytest.mark.s3)])
def offsite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "offsite")
    request.getfixturevalue("s3_env")
    return s3_url(request.getfixturevalue("ceph"), bucket=LOCKED_BUCKET)


def test_forget_replicate_verify_reports_retention_not_forgery(offsite_url: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "primary"
    primary.init(LocalBackend(repo, create=True))
    data = primary.write_tree(tmp_path / "data", files=3)
    taken = []
    for seed in (2, 3, 4):
        primary.mutate(data, seed=seed)
        taken.append(primary.backup(LocalBackend(repo), data)[0])
    ok(cli("replicate", "--from", str(repo), "--to", offsite_url, "--json"))
    before = datetime.now(UTC)
    ok(cli("forget", "--repo", str(repo), "--keep-last", "1", "--json"))
    ok(cli("replicate", "--from", str(repo), "--to", offsite_url, "--delete-delay", "3d", "--json"))

    done = cli("verify-offsite", "--repo", offsite_url, "--delete-delay", "3d", "--json")
    report = ok(done)
    assert report["ok"] and report["problems"] == [] and report["snapshots_signed"] == 1
    kept = {k["id"]: k for k in report["kept_by_delay"]}
    assert sorted(kept) == sorted(taken[:2])
    for entry in kept.values():
        removed = datetime.fromisoformat(entry["removed"])
        assert before - timedelta(seconds=2) <= removed <= datetime.now(UTC)
        assert datetime.fromisoformat(entry["until"]) == removed + timedelta(days=3)
    human = cli("verify-offsite", "--repo", offsite_url, "--delete-delay", "3d")
    assert human.returncode == 0, human.stderr
    assert "2 snapshot(s) removed at the primary, kept offsite until" in human.stdout
    assert "forged" not in human.stdout + human.stderr

    # a snapshot no signed manifest ever listed is still planted, retention or not
    planted = b"planted"
    planted_key = f"snapshots/{hashlib.sha256(planted).hexdigest()}"
    _plant(offsite_url, planted_key, planted)
    done = cli("verify-offsite", "--repo", offsite_url, "--delete-delay", "3d", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert [(p["key"], p["kind"]) for p in report["problems"]] == [(planted_key, "unsigned")]
    assert "forged or planted" in report["problems"][0]["detail"]
    assert len(report["kept_by_delay"]) == 2


def _plant(url: str, key: str, body: bytes) -> None:
    from storage.url import open_backend

    backend = open_backend(url)
    try:
        backend.save(key, body)
    finally:
        backend.close()


def test_once_the_delay_has_passed_the_offsite_is_plainly_clean(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, offsite = tmp_path / "primary", tmp_path / "offsite"
    primary.init(LocalBackend(repo, create=True))
    data = primary.write_tree(tmp_path / "data", files=2)
    primary.backup(LocalBackend(repo), data)
    primary.mutate(data)
    primary.backup(LocalBackend(repo), data)
    ok(cli("replicate", "--from", str(repo), "--to", str(offsite), "--json"))
    ok(cli("forget", "--repo", str(repo), "--keep-last", "1", "--json"))
    for _ in range(2):  # the first run notes what is missing, the next deletes it after a zero delay
        ok(cli("replicate", "--from", str(repo), "--to", str(offsite), "--delete-delay", "0s", "--json"))
    report = ok(cli("verify-offsite", "--repo", str(offsite), "--json"))
    assert report["ok"] and report["kept_by_delay"] == [] and report["warnings"] == []


def _manifest(snapshots: list[str], removed: tuple[RemovedSnapshot, ...] = ()) -> Manifest:
    return Manifest(
        repository="ab" * 16,
        sequence=1,
        time=NOW.isoformat(),
        public_key="",
        config_sha256="00" * 32,
        keys={},
        snapshots=tuple(SnapshotEntry(s, NOW.isoformat(), "goka-juki") for s in snapshots),
        indexes=(),
        index_set_sha256=index_set_digest([]),
        packs={},
        removed=removed,
    )


ids = st.lists(st.sampled_from([f"{n:064x}" for n in range(8)]), unique=True, max_size=8)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(before=ids, after=ids, ages=st.lists(st.integers(0, 200), min_size=8, max_size=8))
def test_the_removal_list_holds_exactly_what_left_within_the_horizon(
    before: list[str], after: list[str], ages: list[int]
) -> None:
    earlier = tuple(
        RemovedSnapshot(f"{n + 100:064x}", (NOW - timedelta(days=age)).isoformat(), None) for n, age in enumerate(ages)
    )
    previous = _manifest(before, earlier)
    removed = removed_since(previous, set(after), NOW)
    got = {r.id: r for r in removed}
    assert len(got) == len(removed)  # each once
    assert not set(got) & set(after)  # nothing still present is "removed"
    for snapshot_id in set(before) - set(after):  # what just left, dated now
        assert got[snapshot_id].removed == NOW.isoformat(timespec="seconds")
        assert got[snapshot_id].system == "goka-juki"
    for entry in earlier:  # what left before, until it ages out
        young = NOW - datetime.fromisoformat(entry.removed) < REMOVED_KEPT
        assert (entry.id in got) == young


def test_the_removal_list_is_signed_and_old_manifests_still_verify() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from backup.manifest import public_key_hex

    key = Ed25519PrivateKey.generate()
    gone = RemovedSnapshot("cd" * 32, NOW.isoformat(), "goka-juki")
    manifest = replace(_manifest(["ab" * 32], (gone,)), public_key=public_key_hex(key))
    raw = encode_signed(manifest, key)
    assert verify_manifest(raw, public_key=public_key_hex(key), repo_id=None).removed == (gone,)
    forged = raw.replace(b"cdcdcd", b"efefef", 1)
    with pytest.raises(ManifestInvalid, match=r"signature does not verify|malformed"):
        verify_manifest(forged, public_key=public_key_hex(key), repo_id=None)
    plain = replace(manifest, removed=())
    assert b"removed" not in plain.body()  # a manifest without removals is byte-for-byte the old format
    assert verify_manifest(encode_signed(plain, key), public_key=None, repo_id=None).removed == ()
