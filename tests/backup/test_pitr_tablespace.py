"""A restore never follows a tablespace to the primary's path, against real PostgreSQL.

The primary's tablespace directory sits on the same host as the restore (a shared host, the
worst case): every restore below must leave it exactly as it was, byte for byte and bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.walfeed import WalFeed
from backup.waltablespace import REFUSED
from dc.clock import JST
from storage.local import LocalBackend
from tests.backup.test_pitr import _archived_past, _write_rows
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli
from tests.servers.postgres import _as_owner, _bin

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text)")
        yield made


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root`` (itself included): type, mode, owner, size, times, content, link."""
    found: dict[str, tuple[object, ...]] = {}
    for here, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            path = Path(here, name)
            st = path.lstat()
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, content)
    return found


def _postgres_dir(path: Path, owner: str | None) -> Path:
    path.mkdir(mode=0o700)
    if owner:
        account = pwd.getpwnam(owner)
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


def _stop_primary(site: WalSite) -> None:
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(site.cluster.datadir), "-m", "fast", "-w", "stop"], site.cluster.owner),
        check=True,
        capture_output=True,
    )


def test_wal_creating_a_tablespace_is_never_replayed_outside_the_target(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    rows = _write_rows(site, 1)
    middle = len(rows) // 2
    target = rows[middle][1] + (rows[middle + 1][1] - rows[middle][1]) / 2
    site.sql("SELECT pg_switch_wal()")
    # the primary's tablespace, on this very host: created after the base backup, so only WAL holds it
    location = _postgres_dir(site.base / "primary-tablespace", site.cluster.owner)
    site.sql(f"CREATE TABLESPACE juki_space LOCATION '{location}'")
    site.sql("CREATE TABLE spaced (id int) TABLESPACE juki_space")
    site.sql("INSERT INTO spaced SELECT generate_series(1, 1000)")
    _archived_past(site)

    site.sql("CHECKPOINT")
    _stop_primary(site)
    untouched = tree_state(location)
    assert len(untouched) > 3  # the version directory, the database's, the table's files

    restored = site.base / "restored"
    latest = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(restored), "--json"
    )
    assert latest.returncode == 1, latest.stderr
    assert len(latest.stderr.strip().splitlines()) == 1, latest.stderr
    assert "creates tablespace" in latest.stderr and str(location) in latest.stderr, latest.stderr
    assert tree_state(location) == untouched
    assert not list((restored / "pg_tblspc").iterdir())  # no link was made
    assert not (restored / "postmaster.pid").exists()  # the server was stopped

    # a moment before the creation recovers: the refused segment is never asked for
    text = target.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S.%f JST")
    earlier_dir = site.base / "earlier"
    earlier = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-time", text,
        "--target-dir", str(earlier_dir), "--json",
    )  # fmt: skip
    assert earlier.returncode == 0, earlier.stderr
    assert json.loads(earlier.stdout)["tables"]["public.juki"] == len([r for r in rows if r[1] <= target])
    assert tree_state(location) == untouched
    assert not list((earlier_dir / "pg_tblspc").iterdir())


def test_a_restores_wal_get_withholds_a_segment_creating_a_tablespace(site: WalSite) -> None:
    """restore_command's own path (the feed was behind): the same check, the segment never written."""
    cli = Cli(site.relay.env)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    location = _postgres_dir(site.base / "primary-tablespace", site.cluster.owner)
    site.sql(f"CREATE TABLESPACE juki_space LOCATION '{location}'")
    segment = str(site.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
    _archived_past(site)
    spool, out = site.base / "spool", site.base / "out"
    spool.mkdir()
    out.mkdir()
    args = ["wal", "get", segment, str(out / segment), "--system", SYSTEM, "--config", str(site.config)]
    got = cli(*args, "--spool", str(spool), "--refuse-tablespaces-from", "0/0")
    assert got.returncode == 1 and "creates tablespace" in got.stderr, got.stderr
    assert (spool / f"{segment}{REFUSED}").is_file()
    assert not (out / segment).exists()
    # a position after the creation: the segment is replayable from there
    plain = cli(*args, "--spool", str(spool), "--refuse-tablespaces-from", "FF/0")
    assert plain.returncode == 0, plain.stderr
    assert (out / segment).stat().st_size > 0
    unguarded = cli(*args[:3], str(out / "again"), *args[4:])
    assert unguarded.returncode == 0, unguarded.stderr


def test_the_feed_withholds_a_segment_creating_a_tablespace_and_leaves_nothing_of_it(site: WalSite) -> None:
    """The feed's own path (the segment written once, read where it was written, renamed only if clean)."""
    location = _postgres_dir(site.base / "primary-tablespace", site.cluster.owner)
    first = str(site.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
    _write_rows(site, 0.3)
    site.sql(f"CREATE TABLESPACE juki_space LOCATION '{location}'")
    segment = str(site.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
    _archived_past(site)
    spool = site.base / "feed-spool"
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        with WalFeed(repo, SYSTEM, first, spool) as feed:
            deadline = time.monotonic() + 60
            while feed.problem is None and time.monotonic() < deadline:
                time.sleep(0.05)
    assert feed.problem is not None and "creates tablespace" in feed.problem and segment in feed.problem
    assert (spool / f"{segment}{REFUSED}").is_file()
    left = sorted(p.name for p in spool.iterdir())
    assert segment not in left and not [n for n in left if n.startswith(".")], left  # no copy, no scan directory
    assert feed.fetched == [n for n in left if len(n) == 24]  # the segments before it, handed over


def test_tree_state_sees_a_mode_change(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    before = tree_state(tmp_path)
    (tmp_path / "f").chmod(0o600)
    assert tree_state(tmp_path) != before
