"""The replicator's own S3 credentials against the Object-Lock offsite, through the real ``bcpctl``.

The attacker holds exactly what the replication job holds (the one S3 user of the real Ceph
RGW) and no repository key. It PUTs other bytes over packs and puts a delete marker on the
snapshot (DELETE without a version id). Object Lock keeps the old versions, and bcpctl must
make use of them: ``restore``, ``snapshots`` and ``check`` read them (with a warning naming
each object), ``verify-offsite`` names each damaged object and the remedy, ``replicate
--repair`` makes them current again with the primary gone, and ``--as-of`` reads the bucket
as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import SyncOptions, replicate
from storage.backend import Backend
from storage.local import LocalBackend
from storage.naming import content_name
from storage.url import open_backend
from tests.replication import primary
from tests.replication.test_cli import ok, one_line_error
from tests.servers.storage import LOCKED_BUCKET, s3_url


@dataclass
class Offsite:
    source: LocalBackend
    target: Backend
    url: str
    client: Any
    prefix: str
    snapshot: str
    data: Path

    def overwrite(self, key: str, body: bytes = b"encrypted by ransomware") -> None:
        self.client.put_object(Bucket=LOCKED_BUCKET, Key=self.prefix + key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=LOCKED_BUCKET, Key=self.prefix + key)

    def current(self, key: str) -> bytes:
        return self.client.get_object(Bucket=LOCKED_BUCKET, Key=self.prefix + key)["Body"].read()


@pytest.fixture
def offsite(ceph, s3_env, tmp_path: Path) -> Offsite:  # type: ignore[no-untyped-def]
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source)
    data = primary.write_tree(tmp_path / "data", files=4)
    snapshot, _ = primary.backup(source, data)
    url = s3_url(ceph, locked=True)
    target = open_backend(url)
    assert replicate(source, target, Ledger(open_state()), SyncOptions(object_lock_days=1)).ok
    prefix = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/") + "/"
    return Offsite(source, target, url, ceph.client(), prefix, snapshot, data)


def attack(offsite: Offsite) -> list[str]:
    """Overwrite every data pack and delete the snapshot; return the keys hit."""
    packs = sorted(i.key for i in offsite.target.list("data/"))
    for pack in packs:
        offsite.overwrite(pack)
    offsite.delete(f"snapshots/{offsite.snapshot}")
    return [*packs, f"snapshots/{offsite.snapshot}"]


def same_tree(restored: Path, data: Path) -> bool:
    got = {p.name: p.read_bytes() for p in restored.rglob("*.bin")}
    return got == {p.name: p.read_bytes() for p in data.iterdir()}


@pytest.mark.s3
def test_restore_snapshots_and_check_read_the_locked_versions_and_name_each_object(
    offsite: Offsite, cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    hit = attack(offsite)
    shutil.rmtree(offsite.source.root)  # the primary is gone: only the offsite is left

    listed = cli("snapshots", "--repo", offsite.url, "--json")
    assert [s["id"] for s in ok(listed)] == [offsite.snapshot]
    target = tmp_path / "restored"
    done = cli("restore", offsite.snapshot, "--repo", offsite.url, "--target", str(target))
    ok(done)
    assert same_tree(target, offsite.data)
    warned = [line for line in done.stderr.splitlines() if line.startswith("bcpctl: warning: ")]
    for key in hit:
        assert any(key in line and "was read instead" in line for line in warned), (key, done.stderr)
    assert f"replicate --repair --to {offsite.url}" in warned[-1]
    checked = cli("check", "--repo", offsite.url, "--read-data", "--json")
    assert ok(checked)["ok"] and f"snapshots/{offsite.snapshot}" in checked.stderr
    latest = cli("restore", "latest", "--repo", offsite.url, "--target", str(tmp_path / "latest"))
    ok(latest)
    assert same_tree(tmp_path / "latest", offsite.data)


@pytest.mark.s3
def test_verify_offsite_names_each_overwritten_and_deleted_object_and_the_remedy(offsite: Offsite, cli) -> None:  # type: ignore[no-untyped-def]
    hit = attack(offsite)
    done = cli("verify-offsite", "--repo", offsite.url, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    found = {p["key"]: p for p in report["problems"]}
    assert sorted(found) == sorted(hit), report["problems"]
    assert {found[k]["kind"] for k in hit if k.startswith("data/")} == {"overwritten"}
    assert found[f"snapshots/{offsite.snapshot}"]["kind"] == "deleted"
    assert all("replicate --repair" in p["detail"] and p["version_id"] for p in found.values())
    assert "replicate --repair" in done.stderr and hit[0] in done.stderr


@pytest.mark.s3
def test_replicate_repair_puts_the_locked_versions_back_without_the_primary(
    offsite: Offsite, cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    hit = attack(offsite)
    shutil.rmtree(offsite.source.root)
    before = {
        k: offsite.client.list_object_versions(Bucket=LOCKED_BUCKET, Prefix=offsite.prefix + k)["Versions"] for k in hit
    }

    fixed = ok(cli("replicate", "--repair", "--to", offsite.url, "--object-lock-days", "2", "--json"))
    assert fixed["repaired"] == sorted(hit) and fixed["unrepairable"] == {} and fixed["remaining"] == []
    assert all("made current again" in fixed["how"][k] for k in hit)
    for key in hit:  # the current version holds the right bytes again, under COMPLIANCE retention
        assert hashlib.sha256(offsite.current(key)).hexdigest() == content_name(key)
        head = offsite.client.head_object(Bucket=LOCKED_BUCKET, Key=offsite.prefix + key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=1, hours=23)
        versions = offsite.client.list_object_versions(Bucket=LOCKED_BUCKET, Prefix=offsite.prefix + key)
        assert len(versions["Versions"]) == len(before[key]) + 1  # added, nothing rewritten

    assert ok(cli("verify-offsite", "--repo", offsite.url, "--json"))["ok"]
    done = cli("restore", offsite.snapshot, "--repo", offsite.url, "--target", str(tmp_path / "after"))
    ok(done)
    assert "warning" not in done.stderr  # the plain current versions are right again
    assert same_tree(tmp_path / "after", offsite.data)


@pytest.mark.s3
def test_as_of_reads_the_bucket_as_it_was_and_hides_what_came_later(offsite: Offsite, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    time.sleep(0.3)
    before_attack = datetime.now(UTC).astimezone()  # any offset: the storage's UTC is compared
    time.sleep(0.3)
    # a later genuine state (pinned with a higher sequence), then the attack on it
    primary.mutate(offsite.data, seed=5)
    later, _ = primary.backup(offsite.source, offsite.data)
    assert replicate(offsite.source, offsite.target, Ledger(open_state()), SyncOptions(object_lock_days=1)).ok
    hit = attack(offsite)
    planted = b"planted snapshot"
    offsite.overwrite(f"snapshots/{hashlib.sha256(planted).hexdigest()}", planted)
    offsite.overwrite("config", b'{"planted": true}')
    at = before_attack.isoformat()

    listed = ok(cli("snapshots", "--repo", offsite.url, "--as-of", at, "--json"))
    assert [s["id"] for s in listed] == [offsite.snapshot]
    done = cli("restore", "latest", "--repo", offsite.url, "--as-of", at, "--target", str(tmp_path / "r"))
    ok(done)
    assert {p.name for p in (tmp_path / "r").rglob("*.bin")} == {f"file-{n:03d}.bin" for n in range(4)}
    assert not list((tmp_path / "r").rglob("new-5.bin"))  # the later snapshot's file
    assert "warning" not in done.stderr  # at that time every current version was right
    assert ok(cli("check", "--repo", offsite.url, "--as-of", at, "--json"))["ok"]
    assert ok(cli("verify-offsite", "--repo", offsite.url, "--as-of", at, "--json"))["ok"]
    # the present state, by contrast, is reported
    now_report = json.loads(cli("verify-offsite", "--repo", offsite.url, "--json").stdout)
    found = {p["key"]: p["kind"] for p in now_report["problems"]}
    assert set(hit) | {"config"} <= set(found) and f"snapshots/{later}" not in found
    assert found[f"snapshots/{hashlib.sha256(planted).hexdigest()}"] == "unsigned"

    too_early = (before_attack - timedelta(days=1)).isoformat()
    assert "no bcpctl repository" in one_line_error(cli("snapshots", "--repo", offsite.url, "--as-of", too_early), 2)


@pytest.mark.parametrize(
    ("value", "needle"),
    [("2026-06-01T03:00:00", "needs a UTC offset"), ("yesterday", "not an ISO 8601 time"), ("", "not an ISO 8601")],
)
def test_a_bad_as_of_is_one_clear_line_and_exit_2(cli, tmp_path: Path, value: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    for command in (["snapshots"], ["check"], ["restore", "latest", "--target", str(tmp_path / "t")]):
        done = cli(*command, "--repo", str(tmp_path), "--as-of", value)
        assert needle in one_line_error(done, 2)


def test_as_of_on_storage_without_versions_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = tmp_path / "repo"
    primary.init(LocalBackend(repo, create=True))
    done = cli("snapshots", "--repo", str(repo), "--as-of", "2026-06-01T03:00:00+09:00")
    assert "keeps none" in one_line_error(done, 2)


@pytest.fixture
def no_history_credentials(ceph) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """A second S3 user that may read the locked bucket but not list or read its versions."""
    access, secret = "BCPCTLNOHISTORY00000", "bcpctl-no-history-secret-not-real-000000"
    user = ["--uid", "nohistory", "--display-name", "t", "--access-key", access, "--secret", secret]
    subprocess.run(
        ["radosgw-admin", "-c", str(ceph.conf), "user", "create", *user],
        check=True,
        capture_output=True,
    )
    who = {"AWS": ["arn:aws:iam:::user/nohistory"]}
    where = [f"arn:aws:s3:::{LOCKED_BUCKET}", f"arn:aws:s3:::{LOCKED_BUCKET}/*"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": who, "Action": ["s3:*"], "Resource": where},
            {"Effect": "Deny", "Principal": who, "Action": ["s3:ListBucketVersions"], "Resource": where},
        ],
    }
    client = ceph.client()
    client.put_bucket_policy(Bucket=LOCKED_BUCKET, Policy=json.dumps(policy))
    try:
        yield {**ceph.env(), "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
    finally:
        client.delete_bucket_policy(Bucket=LOCKED_BUCKET)


@pytest.mark.s3
def test_credentials_that_may_not_list_versions_still_restore_the_current_state(
    offsite: Offsite, cli, tmp_path: Path, no_history_credentials: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    env = no_history_credentials
    done = cli("restore", "latest", "--repo", offsite.url, "--target", str(tmp_path / "r"), env=env)
    ok(done)
    assert same_tree(tmp_path / "r", offsite.data)
    assert "reading only the current versions" in done.stderr and "access denied" in done.stderr
    refused = cli("snapshots", "--repo", offsite.url, "--as-of", datetime.now(UTC).isoformat(), env=env)
    assert "access denied" in one_line_error(refused, 1)


@pytest.mark.s3
def test_an_attack_on_many_objects_warns_about_the_first_ones_and_counts_the_rest(
    ceph, s3_env, cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = LocalBackend(tmp_path / "primary", create=True)
    primary.init(source, pack_size=64 * 1024)
    data = primary.write_tree(tmp_path / "data", files=14)
    primary.backup(source, data)
    url = s3_url(ceph, locked=True)
    assert replicate(source, open_backend(url), Ledger(open_state()), SyncOptions(object_lock_days=1)).ok
    prefix = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/") + "/"
    packs = [info.key for info in source.list("data/")]
    assert len(packs) > 25
    client = ceph.client()
    for pack in packs:
        client.put_object(Bucket=LOCKED_BUCKET, Key=prefix + pack, Body=b"x")
    done = cli("restore", "latest", "--repo", url, "--target", str(tmp_path / "r"))
    ok(done)
    assert same_tree(tmp_path / "r", data)
    warned = done.stderr.strip().splitlines()
    assert len(warned) == 22 and all(line.startswith("bcpctl: warning: ") for line in warned)
    assert f"and {len(packs) - 20} more object(s)" in warned[20]
