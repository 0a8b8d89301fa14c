"""Keyless sync between real repositories on local directories: order, resume, trust, deletions, lag."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from backup.manifest import MANIFEST_KEY, SnapshotEntry, encode_signed, public_key_hex
from backup.opening import open_repository
from backup.snapshot import list_snapshots
from dc.clock import utcnow
from dc.state import open_state
from replication.errors import ManifestRefused, TargetMismatch
from replication.ledger import Ledger, runs
from replication.sync import SyncOptions, replicate
from replication.verify import verify_repository
from storage.errors import ObjectNotFound, StorageError
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.replication import primary


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(open_state())


@pytest.fixture
def sites(tmp_path: Path) -> tuple[LocalBackend, LocalBackend, Path]:
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    primary.init(source)
    return source, target, primary.write_tree(tmp_path / "data")


class PackRefusing(LocalBackend):
    """A target whose storage refuses new packs (a full disk, a broken link)."""

    def save(self, key, data, *, retain_until=None):  # type: ignore[no-untyped-def]
        if key.startswith("data/"):
            raise StorageError("disk full")
        super().save(key, data, retain_until=retain_until)


def tree_digest(backend: LocalBackend, *, skip: tuple[str, ...] = ("tombstones/", "locks/")) -> dict[str, str]:
    return {
        i.key: hashlib.sha256(backend.load(i.key)).hexdigest() for i in backend.list("") if not i.key.startswith(skip)
    }


def test_full_then_incremental_replication_sends_only_new_objects(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    first = replicate(source, target, ledger)
    assert first.ok and first.signed and first.pinned_now and first.manifest_written
    assert tree_digest(target) == tree_digest(source)
    assert first.bytes_sent == sum(i.size for i in source.list(""))

    before = {i.key for i in target.list("")}
    primary.mutate(data)
    primary.backup(source, data)
    second = replicate(source, target, ledger)
    new_objects = {i.key: i.size for i in source.list("") if i.key not in before and i.key != MANIFEST_KEY}
    assert second.objects_copied == len(new_objects)
    # only the new objects and the new manifest crossed the wire
    assert second.bytes_sent == sum(new_objects.values()) + source.stat(MANIFEST_KEY).size
    assert second.objects_present == len(before) - 1  # everything but the manifest
    assert tree_digest(target) == tree_digest(source)

    third = replicate(source, target, ledger)
    assert third.objects_copied == 0 and third.bytes_sent == 0 and not third.manifest_written


def test_the_replica_opens_with_the_passphrase_and_holds_every_snapshot(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    ids = {primary.backup(source, data, system=s)[0] for s in ("goka-juki", "naka-juki")}
    replicate(source, target, ledger)
    with open_repository(target, PASSWORD) as replica:
        assert {s.id for s in list_snapshots(replica)} == ids
    report = verify_repository(target, pinned_key=ledger.pin(replica.config.id).public_key)  # type: ignore[union-attr]
    assert report.ok and report.snapshots_signed == 2 and report.pinned


def test_objects_are_written_in_commit_order(sites, ledger, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    order: list[str] = []
    original = LocalBackend.save

    def recording(self, key, data, *, retain_until=None):  # type: ignore[no-untyped-def]
        if self is target:
            order.append(key.split("/")[0])
        return original(self, key, data, retain_until=retain_until)

    monkeypatch.setattr(LocalBackend, "save", recording)
    replicate(source, target, ledger, SyncOptions(jobs=3))
    rank = {"config": 0, "keys": 0, "data": 1, "meta": 1, "index": 2, "snapshots": 3, "manifests": 3, "manifest": 4}
    assert [rank[k] for k in order] == sorted(rank[k] for k in order)
    assert order[-1] == "manifest"


def test_a_damaged_source_object_is_not_replicated_and_the_manifest_naming_it_waits(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    pack = next(source.list("data/"))
    raw = bytearray(source.load(pack.key))
    raw[100] ^= 0xFF
    source.save(pack.key, raw)
    result = replicate(source, target, ledger)
    assert not result.ok and not result.errors
    assert "damaged there" in result.not_intact[pack.key]
    assert list(target.list("snapshots/")) == [] and list(target.list("index/")) == []
    # the one signed state it holds whole is the empty one the repository was created with
    assert target.load(MANIFEST_KEY) == source.load("manifests/000000000001")
    assert "neither site holds intact" in (result.problem() or "")


def test_a_damaged_pack_no_signed_state_names_fails_the_run_but_the_signed_state_still_goes(  # type: ignore[no-untyped-def]
    sites, ledger, tmp_path: Path
) -> None:
    """A pack no manifest accounts for (planted, or a backup's before its signature) is not copied
    and fails the run; no index file the signed state names can name it, so that state still
    commits, and the index files it does not name (which may) wait with the pack. Stopping the
    run instead let one planted object keep everything from the offsite."""
    source, target, data = sites
    primary.backup(source, data)
    signed_indexes = {i.key for i in source.list("index/")}
    primary.backup(source, primary.write_tree(tmp_path / "unsigned", files=2, seed=9), sign=False)
    assert {i.key for i in source.list("index/")} != signed_indexes
    body = os.urandom(5000)
    key = f"data/{hashlib.sha256(body).hexdigest()[:2]}/{hashlib.sha256(body).hexdigest()}"
    source.save(key, body[:-1] + bytes([body[-1] ^ 1]))
    result = replicate(source, target, ledger)
    assert not result.ok and "damaged there" in result.errors[key] and not result.not_intact
    assert "incomplete" in (result.problem() or "")
    with pytest.raises(ObjectNotFound):
        target.stat(key)
    assert target.load(MANIFEST_KEY) == source.load(MANIFEST_KEY)
    assert {i.key for i in target.list("index/")} == signed_indexes
    pin = ledger.pin(result.repository)
    assert verify_repository(target, pinned_key=pin.public_key, min_sequence=pin.sequence).ok


def test_unsigned_repository_replicates_with_a_warning_until_a_key_is_pinned(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data, sign=False)
    source.remove(MANIFEST_KEY)  # the one init signed: a repository from before manifests were kept
    result = replicate(source, target, ledger)
    assert result.ok and not result.signed
    assert "no signed manifest" in result.warnings[0]
    assert [lag.system for lag in result.lag] == ["*"]
    primary.sign(source)
    assert replicate(source, target, ledger).pinned_now
    source.remove(MANIFEST_KEY)  # now that a key is pinned, an unsigned source is refused
    with pytest.raises(ManifestRefused, match="no signed manifest"):
        replicate(source, target, ledger)


def test_forged_snapshots_at_the_source_are_refused_but_signed_ones_still_replicate(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    good, _ = primary.backup(source, data)
    planted = os.urandom(300)
    name = hashlib.sha256(planted).hexdigest()
    source.save(f"snapshots/{name}", planted)
    old = time.time() - 3600
    os.utime(source.root / "snapshots" / name, (old, old))
    result = replicate(source, target, ledger)
    assert result.refused_snapshots == [name]
    assert not result.ok and "forged or planted" in (result.problem() or "")
    assert [i.key for i in target.list("snapshots/")] == [f"snapshots/{good}"]
    # a snapshot committed moments ago and not yet signed is waiting, not refused
    os.utime(source.root / "snapshots" / name, None)
    fresh = replicate(source, target, ledger)
    assert fresh.unsigned_pending == [name] and fresh.ok


def test_a_rolled_back_manifest_is_refused(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    old_manifest = source.load(MANIFEST_KEY)
    replicate(source, target, ledger)
    primary.mutate(data)
    primary.backup(source, data)
    replicate(source, target, ledger)
    before = tree_digest(target)
    source.save(MANIFEST_KEY, old_manifest)  # storage-level attacker replays the older signed state
    with pytest.raises(ManifestRefused, match="rolled-back"):
        replicate(source, target, ledger)
    assert tree_digest(target) == before


def test_rollback_is_caught_by_the_pin_even_if_the_target_copy_was_rolled_back_too(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    old = source.load(MANIFEST_KEY)
    replicate(source, target, ledger)
    primary.backup(source, data)
    replicate(source, target, ledger)
    source.save(MANIFEST_KEY, old)
    target.save(MANIFEST_KEY, old)
    with pytest.raises(ManifestRefused, match="rolled-back"):
        replicate(source, target, ledger)


def test_a_tampered_manifest_is_refused(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    replicate(source, target, ledger)
    primary.backup(source, data)
    doc = json.loads(source.load(MANIFEST_KEY))
    doc["body"] = doc["body"].replace('"goka-juki"', '"naka-juki"')
    source.save(MANIFEST_KEY, json.dumps(doc).encode())
    before = tree_digest(target)
    with pytest.raises(ManifestRefused, match="signature does not verify"):
        replicate(source, target, ledger)
    assert tree_digest(target) == before


def test_a_manifest_signed_with_another_key_cannot_smuggle_in_a_snapshot(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    _, manifest = primary.backup(source, data)
    replicate(source, target, ledger)
    # the attacker plants a snapshot and signs a complete-looking manifest with a key of their own
    planted = os.urandom(300)
    name = hashlib.sha256(planted).hexdigest()
    source.save(f"snapshots/{name}", planted)
    attacker = Ed25519PrivateKey.generate()
    forged = replace(
        manifest,
        sequence=manifest.sequence + 1,
        public_key=public_key_hex(attacker),
        snapshots=(*manifest.snapshots, SnapshotEntry(name, manifest.snapshots[0].time, "goka-juki")),
    )
    source.save(MANIFEST_KEY, encode_signed(forged, attacker))
    with pytest.raises(ManifestRefused, match="not the pinned key"):
        replicate(source, target, ledger)
    with pytest.raises(ObjectNotFound):
        target.stat(f"snapshots/{name}")


def test_truncation_holds_the_manifest_back_and_copies_the_rest(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    """tests/replication/test_holdback.py has the cases; here the first run to an empty offsite."""
    source, target, data = sites
    primary.backup(source, data)
    index = next(source.list("index/"))
    source.remove(index.key)
    result = replicate(source, target, ledger)
    assert not result.ok and "truncated" in (result.problem() or "") and list(result.not_intact) == [index.key]
    assert {i.key for i in target.list("data/")} == {i.key for i in source.list("data/")}
    assert list(target.list("index/")) == [] and list(target.list("snapshots/")) == []
    # the one signed state it can hold whole is the empty one the repository was created with
    assert target.load(MANIFEST_KEY) == source.load("manifests/000000000001")
    assert verify_repository(target, pinned_key=ledger.pin(result.repository).public_key).ok  # type: ignore[union-attr]


def test_a_target_holding_another_repository_is_refused(sites, ledger, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source, _, data = sites
    primary.backup(source, data)
    other = LocalBackend(tmp_path / "other", create=True)
    primary.init(other)
    before = tree_digest(other)
    with pytest.raises(TargetMismatch, match="nothing was written"):
        replicate(source, other, ledger)
    assert tree_digest(other) == before


def test_deletions_at_the_source_reach_the_target_only_after_the_delay(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    first, _ = primary.backup(source, data)
    primary.backup(source, data)
    replicate(source, target, ledger)
    primary.forget(source, first)
    options = SyncOptions(delete_delay=timedelta(days=7))
    start = utcnow()
    noticed = replicate(source, target, ledger, options, now=start)
    assert noticed.deleted == [] and noticed.pending_deletions == 1
    six_days = replicate(source, target, ledger, options, now=start + timedelta(days=6))
    assert six_days.deleted == []
    target.stat(f"snapshots/{first}")  # still there
    later = replicate(source, target, ledger, options, now=start + timedelta(days=8))
    assert later.deleted == [f"snapshots/{first}"]
    with pytest.raises(ObjectNotFound):
        target.stat(f"snapshots/{first}")
    assert verify_repository(target).ok


def test_objects_still_referenced_by_the_accepted_manifest_are_never_deleted(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    replicate(source, target, ledger)
    pack = next(source.list("data/"))
    source.remove(pack.key)  # ransomware deletes a pack at the primary; the manifest still names it
    zero = SyncOptions(delete_delay=timedelta(0))
    first = replicate(source, target, ledger, zero)
    second = replicate(source, target, ledger, zero)
    assert first.deleted == second.deleted == []
    target.stat(pack.key)


def test_fixed_name_objects_are_never_overwritten_from_the_source(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data, sign=False)
    source.remove(MANIFEST_KEY)  # unsigned: only the fixed-name rule protects the slot
    replicate(source, target, ledger)
    slot = next(source.list("keys/"))
    source.save(slot.key, b'{"tampered": true, "padding": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}')
    good = target.load(slot.key)
    result = replicate(source, target, ledger)
    assert result.conflicts == [slot.key] and not result.ok
    assert target.load(slot.key) == good


def test_lag_and_runs_are_recorded_per_system(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data, system="goka-juki")
    primary.backup(source, data, system="naka-juki")
    result = replicate(source, target, ledger)
    lags = {lag.system: lag for lag in ledger.lag(target.url)}
    assert set(lags) == {"goka-juki", "naka-juki"}
    assert all(lag.lag_seconds == 0 for lag in lags.values())
    time.sleep(0.01)
    primary.mutate(data)
    primary.backup(source, data, system="goka-juki")
    # the replication of the newest goka snapshot fails: goka lags, naka does not
    failed = replicate(source, PackRefusing(target.root), ledger)
    assert not failed.ok
    lags = {lag.system: lag.lag_seconds for lag in ledger.lag(target.url)}
    assert lags["goka-juki"] > 0 and lags["naka-juki"] == 0
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(runs.c.ok, runs.c.objects_copied)).all()
    assert rows[0] == (True, result.objects_copied)


def test_limit_rate_holds_the_transfer_to_the_configured_bandwidth(sites, ledger) -> None:  # type: ignore[no-untyped-def]
    source, target, data = sites
    primary.backup(source, data)
    total = sum(i.size for i in source.list(""))
    rate = total / 1.5  # the whole repository should take about 1.5 s (minus the 1 s burst)
    started = time.monotonic()
    result = replicate(source, target, ledger, SyncOptions(limit_rate=rate, jobs=4))
    elapsed = time.monotonic() - started
    assert result.ok
    assert elapsed >= (total - rate) / rate * 0.9
