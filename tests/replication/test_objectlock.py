"""Object Lock at the offsite, enforced by a real Ceph RGW: the storage itself refuses destruction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dc.clock import utcnow
from dc.errors import UsageError
from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import SyncOptions, replicate
from replication.verify import verify_repository
from storage.local import LocalBackend
from storage.objectlock import needs_extension, retain_until
from storage.url import open_backend
from tests.replication import primary
from tests.servers.storage import LOCKED_BUCKET, s3_url

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_retain_until_and_the_half_period_extension_rule() -> None:
    assert retain_until(NOW, 35) == NOW + timedelta(days=35)
    assert needs_extension(None, NOW, 35)
    assert needs_extension(NOW + timedelta(days=17), NOW, 35)
    assert not needs_extension(NOW + timedelta(days=18), NOW, 35)


@pytest.fixture
def locked_replica(ceph, s3_env, tmp_path: Path):  # type: ignore[no-untyped-def]
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    data = primary.write_tree(tmp_path / "data", files=4)
    first, _ = primary.backup(source, data)
    url = s3_url(ceph, locked=True)
    target = open_backend(url)
    assert target.capabilities.object_lock
    ledger = Ledger(open_state())
    result = replicate(source, target, ledger, SyncOptions(object_lock_days=1))
    assert result.ok
    prefix = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/") + "/"
    return source, target, ledger, ceph.client(), prefix, first, data


@pytest.mark.s3
def test_replicated_objects_carry_compliance_retention(locked_replica) -> None:  # type: ignore[no-untyped-def]
    source, _, _, client, prefix, _, _ = locked_replica
    for info in source.list(""):
        head = client.head_object(Bucket=LOCKED_BUCKET, Key=prefix + info.key)
        assert head["ObjectLockMode"] == "COMPLIANCE", info.key
        until = head["ObjectLockRetainUntilDate"]
        assert utcnow() + timedelta(hours=23) < until < utcnow() + timedelta(days=1, hours=1)


@pytest.mark.s3
def test_the_server_refuses_to_delete_or_overwrite_a_locked_version(locked_replica) -> None:  # type: ignore[no-untyped-def]
    _, target, _, client, prefix, _, _ = locked_replica
    key = prefix + next(target.list("data/")).key
    original = client.get_object(Bucket=LOCKED_BUCKET, Key=key)
    version, body = original["VersionId"], original["Body"].read()

    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=LOCKED_BUCKET, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=LOCKED_BUCKET, Key=key, VersionId=version, BypassGovernanceRetention=True)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as refused:
        client.put_object_retention(
            Bucket=LOCKED_BUCKET,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": utcnow() + timedelta(minutes=5)},
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    # An "overwrite" (ransomware encrypting in place) only adds a version: the locked one survives intact.
    client.put_object(Bucket=LOCKED_BUCKET, Key=key, Body=b"encrypted by ransomware")
    kept = client.get_object(Bucket=LOCKED_BUCKET, Key=key, VersionId=version)
    assert kept["Body"].read() == body
    with pytest.raises(ClientError):
        client.delete_object(Bucket=LOCKED_BUCKET, Key=key, VersionId=version)


@pytest.mark.s3
def test_deletions_never_touch_objects_under_retention(locked_replica) -> None:  # type: ignore[no-untyped-def]
    source, target, ledger, _, _, first, data = locked_replica
    primary.backup(source, data)
    primary.forget(source, first)
    options = SyncOptions(object_lock_days=1, delete_delay=timedelta(0))
    replicate(source, target, ledger, options)
    second = replicate(source, target, ledger, options)
    assert second.deleted == []
    assert second.retained_by_lock == [f"snapshots/{first}"]
    target.stat(f"snapshots/{first}")
    # once the retention has passed, the delayed deletion goes ahead
    later = replicate(source, target, ledger, options, now=utcnow() + timedelta(days=2))
    assert later.deleted == [f"snapshots/{first}"] and later.retained_by_lock == []


@pytest.mark.s3
def test_locks_of_packs_still_in_use_are_extended_once_per_half_period(locked_replica) -> None:  # type: ignore[no-untyped-def]
    source, target, ledger, client, prefix, _, _ = locked_replica
    longer = SyncOptions(object_lock_days=4)
    extended = replicate(source, target, ledger, longer)
    referenced = {i.key for i in source.list("") if not i.key.startswith(("tombstones/", "locks/"))}
    assert extended.locks_extended == len(referenced)
    pack = next(source.list("data/")).key
    until = client.head_object(Bucket=LOCKED_BUCKET, Key=prefix + pack)["ObjectLockRetainUntilDate"]
    assert until > utcnow() + timedelta(days=3, hours=23)
    assert replicate(source, target, ledger, longer).locks_extended == 0  # the ledger knows; no HEAD storm
    assert verify_repository(target).ok


@pytest.mark.s3
def test_object_lock_days_on_a_bucket_without_object_lock_is_refused(ceph, s3_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    target = open_backend(s3_url(ceph))
    with pytest.raises(UsageError, match="Object Lock"):
        replicate(source, target, Ledger(open_state()), SyncOptions(object_lock_days=3))
    assert list(target.list("")) == []
