"""``replicate --follow`` against a real Ceph RGW: the offsite trails continuous WAL pushes by
seconds, SIGTERM ends it cleanly, and a SIGKILL mid-upload leaves nothing half-stored."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from backup.opening import open_repository
from backup.walarchive import push
from dc.state import open_state
from replication.follow import Follower, FollowOptions, refreshed_lags
from replication.ledger import Ledger
from replication.records import SystemLag
from replication.sync import SyncOptions, replicate
from replication.verify import verify_repository
from storage.local import LocalBackend
from storage.naming import content_name
from storage.url import open_backend
from tests.conftest import PASSWORD
from tests.replication import primary
from tests.servers.storage import LOCKED_BUCKET, s3_url

SYSTEM = "goka-juki"
pytestmark = pytest.mark.s3


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    primary.backup(backend, primary.write_tree(tmp_path / "data", files=4), system=SYSTEM)
    return backend


def _push(source: LocalBackend, tmp_path: Path, segno: int, size: int) -> str:
    wal = tmp_path / f"0000000100000000{segno:08X}"
    wal.write_bytes(random.Random(segno).randbytes(size))
    with open_repository(source, PASSWORD, sync=False) as repo:
        key = push(repo, SYSTEM, wal).key
    wal.unlink()
    return key


def _follower(source: LocalBackend, url: str, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "replicate", "--from", str(source.root), "--to", url, "--follow",
         "--json", *extra],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _wait_for(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout} s")


def test_the_offsite_trails_continuous_wal_pushes_by_seconds_and_sigterm_stops_cleanly(
    source: LocalBackend, tmp_path: Path, ceph: Any, s3_env: dict[str, str]
) -> None:
    url = s3_url(ceph)
    follower = _follower(source, url, s3_env, "--interval", "0.5")
    target = open_backend(url)
    try:
        _wait_for(lambda: any(True for _ in target.list("snapshots/")), 60)
        delays = []
        for segno in range(1, 9):  # a segment every ~0.3 s, as a busy primary archives them
            key = _push(source, tmp_path, segno, 1 << 20)
            delays.append(_wait_for(lambda key=key: key in {i.key for i in target.list("wal/")}, 30))
            time.sleep(0.3)
        assert max(delays) < 5, delays
        lag = {row.system: row for row in Ledger(open_state()).lag()}[SYSTEM]
        assert lag.recovery_point_lag_seconds is not None and lag.recovery_point_lag_seconds < 5
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    events = _events(out)
    assert events[0]["event"] == "round" and events[0]["kind"] == "full" and events[0]["ok"]
    assert events[-1]["event"] == "stopped" and events[-1]["problems"] == 0
    assert sum(e.get("wal_copied", 0) for e in events if e["event"] == "round") == 8
    report = verify_repository(target, pinned_key=None)
    assert report.ok, report.problems


def test_a_follower_killed_mid_upload_leaves_no_object_half_stored(
    source: LocalBackend, tmp_path: Path, ceph: Any, s3_env: dict[str, str]
) -> None:
    url = s3_url(ceph)
    rng = random.Random(7)
    segno = 0
    for _ in range(4):  # several kills, each at another moment of the uploads in flight
        for _ in range(3):
            segno += 1
            _push(source, tmp_path, segno, 40 << 20)
        follower = _follower(source, url, s3_env, "--interval", "0.2", "--jobs", "2")
        time.sleep(0.8 + rng.random() * 2.0)
        follower.kill()
        follower.communicate(timeout=30)
        target = open_backend(url)
        for info in target.list(""):
            name = content_name(info.key)
            if name is not None:
                assert hashlib.sha256(target.load(info.key)).hexdigest() == name, info.key
    follower = _follower(source, url, s3_env, "--interval", "0.2")
    target = open_backend(url)
    wanted = {i.key for i in source.list("wal/")}
    _wait_for(lambda: wanted <= {i.key for i in target.list("wal/")}, 120)
    follower.send_signal(signal.SIGTERM)
    follower.communicate(timeout=60)
    assert follower.returncode == 0
    report = verify_repository(target)
    assert report.ok, report.problems


def test_the_follower_refuses_what_it_cannot_do(cli: Any, source: LocalBackend, tmp_path: Path) -> None:
    done = cli("replicate", "--from", str(source.root), "--to", str(tmp_path / "x"), "--follow", "--repair")
    assert done.returncode == 2 and "--follow" in done.stderr


def test_the_recovery_point_lag_follows_the_wal_between_full_runs() -> None:
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    lags = [SystemLag(SYSTEM, base, base, 0.0, 0.0)]
    newer = base + timedelta(seconds=42)
    assert refreshed_lags(lags, {SYSTEM: newer}, {SYSTEM: base})[0].recovery_point_lag_seconds == 42
    assert refreshed_lags(lags, {SYSTEM: newer}, {SYSTEM: newer})[0].recovery_point_lag_seconds == 0
    # a system that only archives WAL (no snapshot yet offsite): measured from the WAL alone
    assert refreshed_lags([], {"other": newer}, {"other": base})[0].recovery_point_lag_seconds == 42


def test_a_cancelled_run_writes_no_manifest_and_the_next_run_completes(source: LocalBackend, tmp_path: Path) -> None:
    ledger = Ledger(open_state())
    target = LocalBackend(tmp_path / "offsite", create=True)
    cancel = threading.Event()
    cancel.set()  # SIGTERM before the first object
    stopped = replicate(source, target, ledger, cancel=cancel)
    assert stopped.cancelled and not stopped.ok and not stopped.manifest_written
    assert not any(True for _ in target.list("snapshots/")) and not any(True for _ in target.list("manifest"))
    done = replicate(source, target, ledger)
    assert done.ok and done.manifest_written


def test_wal_rounds_ship_only_the_new_segments_and_keep_the_lag(source: LocalBackend, tmp_path: Path) -> None:
    ledger = Ledger(open_state())
    target = LocalBackend(tmp_path / "offsite", create=True)
    follower = Follower(source, target, ledger, SyncOptions(), FollowOptions())
    never = threading.Event()
    assert follower.full(never).ok and not follower.due_full(time.monotonic())
    first = _push(source, tmp_path, 1, 1 << 16)
    shipped = follower.wal(never)
    assert shipped.wal_copied == 1 and target.load(first) == source.load(first)
    assert follower.wal(never).wal_copied == 0  # nothing new: nothing sent again
    assert {row.system: row for row in ledger.lag()}[SYSTEM].recovery_point_lag_seconds == 0
    primary.sign(source)  # a new signed state: the next round is a full run
    assert follower.due_full(time.monotonic())


class SaveOrder(LocalBackend):
    """A target that remembers the order objects arrive in."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, create=True)
        self.order: list[str] = []

    def save(self, key: str, data: Any, *, retain_until: Any = None) -> None:
        super().save(key, data, retain_until=retain_until)
        self.order.append(key)


def test_a_full_run_sends_the_wal_before_the_packs(source: LocalBackend, tmp_path: Path) -> None:
    wal = _push(source, tmp_path, 1, 1 << 16)
    target = SaveOrder(tmp_path / "offsite")
    assert replicate(source, target, Ledger(open_state())).ok
    packs = [n for n, key in enumerate(target.order) if key.startswith("data/")]
    assert packs and target.order.index(wal) < min(packs)


def test_a_configured_follower_ships_wal_under_the_sites_object_lock(
    source: LocalBackend, tmp_path: Path, cli: Any, ceph: Any, s3_env: dict[str, str]
) -> None:
    url = s3_url(ceph, locked=True)
    config = {
        "consortium": "ibaraki-kikan",
        "sites": {
            "primary": {"prefecture": "茨城県", "role": "primary", "repository": str(source.root)},
            "osaka": {"prefecture": "大阪府", "role": "offsite", "repository": url, "object_lock_days": 1},
            "sapporo": {"prefecture": "北海道", "role": "offsite", "repository": str(tmp_path / "sapporo")},
        },
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            SYSTEM: {"tenant": "goka", "business": "住民基本台帳", "tier": 1, "rpo": "15m",
                     "source": {"kind": "path", "path": "/nonexistent"}},
        },
    }  # fmt: skip
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    both = cli("replicate", "--config", str(path), "--follow")
    assert both.returncode == 2 and "--site" in both.stderr  # one follower per site
    follower = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "replicate", "--config", str(path), "--site", "osaka", "--follow",
         "--interval", "0.3", "--json"],
        env={**os.environ, **s3_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    target = open_backend(url)
    try:
        _wait_for(lambda: any(True for _ in target.list("snapshots/")), 60)
        key = _push(source, tmp_path, 1, 1 << 16)
        _wait_for(lambda: key in {i.key for i in target.list("wal/")}, 30)
    finally:
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    location = url.split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/")
    head = ceph.client().head_object(Bucket=LOCKED_BUCKET, Key=f"{location}/{key}")
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_wal_keeps_moving_while_a_new_base_backup_is_replicated(
    source: LocalBackend, tmp_path: Path, ceph: Any, s3_env: dict[str, str]
) -> None:
    url = s3_url(ceph)
    # 5 MB/s: the base backup's ~24 MB of packs take seconds to send, the WAL segment does not wait
    follower = _follower(source, url, s3_env, "--interval", "0.2", "--limit-rate", "5M")
    target = open_backend(url)
    try:
        _wait_for(lambda: any(True for _ in target.list("snapshots/")), 60)
        snapshots = {i.key for i in target.list("snapshots/")}
        primary.backup(source, primary.write_tree(tmp_path / "base", files=24, size=1 << 20, seed=3), system=SYSTEM)
        time.sleep(0.5)  # the follower has seen the new manifest and started its full run
        key = _push(source, tmp_path, 1, 1 << 16)
        _wait_for(lambda: key in {i.key for i in target.list("wal/")}, 30)
        assert {i.key for i in target.list("snapshots/")} == snapshots  # the base backup is still on its way
        _wait_for(lambda: {i.key for i in target.list("snapshots/")} > snapshots, 120)
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert all(e["ok"] for e in _events(out) if e["event"] == "round"), out
    report = verify_repository(target)
    assert report.ok, report.problems
