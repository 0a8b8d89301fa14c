"""Replication ships WAL objects like any object, keyless, and measures each system's recovery point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from backup.opening import open_repository
from backup.repository import read_config
from backup.walarchive import get, push
from dc.state import open_state
from replication.ledger import Ledger
from replication.sync import replicate
from replication.verify import verify_repository
from storage.errors import StorageError
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.replication import primary

SYSTEM = "goka-juki"


class WalRefusing(LocalBackend):
    """A target whose link fails for WAL objects (the rest arrives)."""

    def save(self, key: str, data: Any, *, retain_until: Any = None) -> None:
        if key.startswith("wal/"):
            raise StorageError("link down")
        super().save(key, data, retain_until=retain_until)


def _push(source: LocalBackend, tmp_path: Path, segno: int) -> str:
    wal = tmp_path / f"0000000100000000{segno:08X}"
    wal.write_bytes(os.urandom(1 << 14) * 8)
    with open_repository(source, PASSWORD, sync=False) as repo:
        return push(repo, SYSTEM, wal).key


@pytest.fixture
def source(tmp_path: Path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "primary", create=True)
    primary.init(backend)
    primary.backup(backend, primary.write_tree(tmp_path / "data"), system=SYSTEM)
    return backend


def test_wal_objects_reach_the_offsite_verified_without_a_key(source: LocalBackend, tmp_path: Path) -> None:
    ledger = Ledger(open_state())
    keys = [_push(source, tmp_path, n) for n in (1, 2)]
    target = LocalBackend(tmp_path / "offsite", create=True)
    result = replicate(source, target, ledger)
    assert result.ok and result.phases["wal"].objects == 2
    assert all(target.load(k) == source.load(k) for k in keys)
    pin = ledger.pin(read_config(source)[0].id)
    assert pin is not None
    report = verify_repository(target, pinned_key=pin.public_key)
    assert report.ok, report.problems
    with open_repository(target, PASSWORD, sync=False) as replica:  # the offsite restores from its own copy
        got = get(replica, SYSTEM, "000000010000000000000002", tmp_path / "restored")
    assert got.size == (tmp_path / "000000010000000000000002").stat().st_size
    lag = {row.system: row for row in ledger.lag()}[SYSTEM]
    assert lag.recovery_point_lag_seconds == 0


def test_recovery_point_lag_counts_wal_the_offsite_lacks(source: LocalBackend, tmp_path: Path) -> None:
    ledger = Ledger(open_state())
    _push(source, tmp_path, 1)
    target_dir = tmp_path / "offsite"
    replicate(source, LocalBackend(target_dir, create=True), ledger)
    newer = _push(source, tmp_path, 2)
    stored = source.root / newer
    os.utime(stored, (stored.stat().st_mtime + 300, stored.stat().st_mtime + 300))
    refused = replicate(source, WalRefusing(target_dir), ledger)
    assert not refused.ok
    lag = {row.system: row for row in ledger.lag()}[SYSTEM]
    assert lag.lag_seconds == 0  # every snapshot is there: the snapshot lag cannot see it
    assert lag.recovery_point_lag_seconds is not None and lag.recovery_point_lag_seconds >= 299
    replicate(source, LocalBackend(target_dir), ledger)
    assert {row.system: row for row in ledger.lag()}[SYSTEM].recovery_point_lag_seconds == 0
