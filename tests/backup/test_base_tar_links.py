"""What real ``pg_basebackup -Ft`` tars hold: no link a restore needs, so refusing every link
member (backup/targuard.py) refuses nothing PostgreSQL writes — with and without tablespaces,
and with ``pg_wal`` a symlink on the primary (``initdb -X``, a WAL disk of its own)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import psycopg
import pytest

from backup.targuard import vetted_members
from tests.servers.postgres import Cluster, _as_owner, _bin, new_cluster

pytestmark = pytest.mark.postgres


def _basebackup(cluster: Cluster, into: Path) -> dict[str, list[tarfile.TarInfo]]:
    subprocess.run(
        _as_owner(
            [_bin("pg_basebackup"), "-d", cluster.dsn(), "-D", str(into), "-Ft", "-X", "none", "--no-sync"],
            cluster.owner,
        ),
        check=True,
        capture_output=True,
    )
    held: dict[str, list[tarfile.TarInfo]] = {}
    for tar_path in sorted(into.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            held[tar_path.name] = list(vetted_members(tar.getmembers(), "real"))
    return held


def test_a_real_base_backup_holds_no_link_member_with_or_without_tablespaces() -> None:
    cluster = new_cluster(settings={"fsync": "off"})
    try:
        # pg_wal on a disk of its own: a symlink in the data directory
        wal = cluster.base / "wal"
        os.rename(cluster.datadir / "pg_wal", wal)
        (cluster.datadir / "pg_wal").symlink_to(wal)
        if cluster.owner:
            os.lchown(cluster.datadir / "pg_wal", wal.stat().st_uid, wal.stat().st_gid)
        cluster.start()
        plain = _basebackup(cluster, cluster.base / "plain")
        assert list(plain) == ["base.tar"]
        space = cluster.base / "space"
        space.mkdir()
        if cluster.owner:
            os.chown(space, wal.stat().st_uid, wal.stat().st_gid)
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE juki_space LOCATION '{space}'")
            conn.execute("CREATE TABLE juki (id int) TABLESPACE juki_space")
            conn.execute("INSERT INTO juki SELECT generate_series(1, 100)")
        spaced = _basebackup(cluster, cluster.base / "spaced")
        assert len(spaced) == 2
        for held in (plain, spaced):
            wal_members = [m for m in held["base.tar"] if m.name.strip("./") == "pg_wal"]
            assert wal_members and all(m.isdir() for m in wal_members)
            assert all(not (m.issym() or m.islnk()) for members in held.values() for m in members)
        assert any(m.name == "tablespace_map" for m in spaced["base.tar"])
    finally:
        cluster.remove()
