"""Recovery to any second: base backup + WAL replay into a new cluster, against real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from backup.basebackup import TAG_END, TAG_START, TAG_STOP
from backup.pitr import RecoveryTarget, check_moment, choose_base, parse_moment
from backup.snapshot import Snapshot
from dc.clock import JST
from dc.errors import ProblemFound, UsageError
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import Cli
from tests.servers.postgres import _as_owner, _bin

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text)")
        yield made


def _write_rows(site: WalSite, seconds: float, stop: threading.Event | None = None) -> list[tuple[int, datetime]]:
    """One row per transaction every ~20 ms: (id, time of insert)."""
    rows = []
    deadline = time.monotonic() + seconds
    with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("INSERT INTO juki (v) VALUES (md5(random()::text)) RETURNING id, at").fetchone()
            assert row is not None
            rows.append((int(row[0]), row[1]))
            time.sleep(0.02)
    return rows


def _pgbench(site: WalSite, seconds: int) -> subprocess.Popen[bytes]:
    """A steady rate-limited pgbench load beside the marked rows (the WAL is not ours alone)."""
    owner = site.cluster.owner
    server = ["-h", "127.0.0.1", "-p", str(site.cluster.port), "-U", "postgres", "postgres"]
    subprocess.run(_as_owner([_bin("pgbench"), "-i", "-s", "1", "-q", *server], owner), check=True, capture_output=True)
    return subprocess.Popen(
        _as_owner([_bin("pgbench"), "-T", str(seconds), "-c", "2", "-R", "100", *server], owner),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _archived_past(site: WalSite) -> None:
    name = str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        last = site.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
        if last is not None and last >= name:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not archived")


def _stop(datadir: Path, owner: str | None) -> None:
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"], owner), capture_output=True
    )


def test_recovery_lands_within_a_second_of_the_target_time_under_load(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    load = _pgbench(site, 12)
    backed = cli("backup", "run", "--config", str(site.config), "--json")
    assert backed.returncode == 0, backed.stderr
    rows = _write_rows(site, 6)
    load.wait()
    _archived_past(site)
    middle = len(rows) // 2
    # between two rows, so the rows on either side say exactly where replay stopped
    target = rows[middle][1] + (rows[middle + 1][1] - rows[middle][1]) / 2
    text = target.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S.%f JST")
    restored_dir = site.base / "restored"
    site.relay.calls.clear()
    result = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-time", text,
        "--target-dir", str(restored_dir), "--keep-running", "--json",
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        # no history file costs a bcpctl process: the feed marked those the archive lacks absent
        assert not [c for c in site.relay.calls if c[0] == "get" and c[1].endswith(".history")], site.relay.calls
        data = json.loads(result.stdout)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{data['port']}/postgres", autocommit=True) as conn:
            got = {int(r[0]) for r in conn.execute("SELECT id FROM juki").fetchall()}
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    finally:
        _stop(restored_dir, site.cluster.owner)
    wanted = {i for i, at in rows if at <= target}
    assert got == wanted  # every row before the target, none after
    last = max(at for i, at in rows if i in got)
    assert timedelta(0) <= target - last < timedelta(seconds=1)
    recovered = datetime.fromisoformat(data["recovered_to"])
    assert timedelta(0) <= target - recovered < timedelta(seconds=1)
    assert data["tables"]["public.juki"] == len(wanted)
    assert data["smoke"] == [str(len(wanted))]
    assert data["rto_seconds"] == pytest.approx(data["base_seconds"] + data["replay_seconds"], abs=0.01)


def test_to_latest_replays_the_whole_archive_and_a_target_before_any_base_is_refused(site: WalSite) -> None:
    cli = Cli(site.relay.env)
    before = datetime.now(UTC)
    assert cli("backup", "run", "--config", str(site.config)).returncode == 0
    rows = _write_rows(site, 1)
    _archived_past(site)
    latest = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest",
        "--target-dir", str(site.base / "latest"), "--json",
    )  # fmt: skip
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["tables"]["public.juki"] == len(rows)
    assert json.loads(latest.stdout)["running"] is False
    early = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-time", (before - timedelta(hours=1)).isoformat(),
        "--target-dir", str(site.base / "early"),
    )  # fmt: skip
    assert early.returncode == 2 and "before the oldest base backup" in early.stderr, early.stderr
    assert len(early.stderr.strip().splitlines()) == 1 and not (site.base / "early").exists()
    # a future moment: refused by the clock before anything is unpacked or replayed
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    future = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-time", later,
        "--target-dir", str(site.base / "future"),
    )  # fmt: skip
    assert future.returncode == 2 and "is in the future" in future.stderr, future.stderr
    assert len(future.stderr.strip().splitlines()) == 1 and not (site.base / "future").exists()
    taken = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dir", str(site.base / "latest")
    )
    assert taken.returncode == 2 and "is not empty" in taken.stderr
    # into an existing database: recovered privately, copied in one transaction, counted again.
    # Its scratch goes under a $TMPDIR of this test's own: the shared one also holds the scratch
    # clusters of whatever else runs on the machine (the other xdist worker's drills and
    # tablespace backups), which are not this restore's to remove.
    tmp = site.base / "tmp"
    tmp.mkdir(mode=0o755)
    target = site.cluster.create_database("juki_restored")
    copied = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dsn", target, "--json",
        env={"TMPDIR": str(tmp)},
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert json.loads(copied.stdout)["tables"]["public.juki"] == len(rows)
    assert site.sql("SELECT count(*) FROM juki", database="juki_restored") == [(len(rows),)]
    assert not list(tmp.iterdir())  # the private cluster is gone
    both = cli(
        "restore", SYSTEM, "--config", str(site.config), "--to-latest", "--target-dsn", target,
        "--target-dir", str(site.base / "x"),
    )  # fmt: skip
    assert both.returncode == 2 and "exactly one of" in both.stderr


def test_a_host_with_a_key_file_restores_with_it_not_the_passphrase(cli: Cli) -> None:
    """The key file opens the same master key as the passphrase (backup/keyfile.py): a restore
    on a host that names one opens the repository as its wal get does, without the passphrase."""
    with wal_site(cli.env, key_file=True) as site:
        site.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), v text)")
        run = Cli(site.relay.env)
        assert run("backup", "run", "--config", str(site.config)).returncode == 0
        rows = _write_rows(site, 0.5)
        _archived_past(site)
        (site.base / "password").write_text("not the passphrase")  # only the key file can open it now
        latest = run(
            "restore", SYSTEM, "--config", str(site.config), "--to-latest",
            "--target-dir", str(site.base / "latest"), "--json",
        )  # fmt: skip
        assert latest.returncode == 0, latest.stderr
        assert json.loads(latest.stdout)["tables"]["public.juki"] == len(rows)


def _base(end: str, start: str = "0/2000028", stop: str = "0/3000000") -> Snapshot:
    when = datetime.fromisoformat(end)
    tags = {TAG_END: end, TAG_START: start, TAG_STOP: stop}
    return Snapshot(when, "h", "u", "postgres-wal", "x", (), system=SYSTEM, tags=tags, id=end)


def test_choose_base_takes_the_newest_that_ended_before_the_target() -> None:
    bases = [_base("2026-12-06T00:00:00+00:00", stop="0/3000000"), _base("2026-12-06T01:00:00+00:00", stop="0/9000000")]
    at = parse_moment("2026-12-06 09:30:00 JST")  # 00:30 UTC
    assert choose_base(bases, RecoveryTarget(time=at)).id == bases[0].id
    assert choose_base(bases, RecoveryTarget()).id == bases[1].id
    assert choose_base(bases, RecoveryTarget(lsn=0x5000000)).id == bases[0].id
    with pytest.raises(UsageError, match="before the oldest base backup"):
        choose_base(bases, RecoveryTarget(time=parse_moment("2026-12-06T08:00:00+09:00")))
    with pytest.raises(ProblemFound, match="no base backup"):
        choose_base([], RecoveryTarget(time=at))


def test_a_target_time_after_now_is_refused_and_now_itself_is_not() -> None:
    now = parse_moment("2026-12-06 10:00:00 JST")
    check_moment(RecoveryTarget(time=now), now)
    check_moment(RecoveryTarget(), now)
    check_moment(RecoveryTarget(lsn=0x5000000), now)
    with pytest.raises(UsageError, match="is in the future"):
        check_moment(RecoveryTarget(time=now + timedelta(seconds=1)), now)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06 03:14:15 JST", "2026-12-05T18:14:15+00:00"),
        ("2026-12-06T03:14:15+09:00", "2026-12-05T18:14:15+00:00"),
        ("2026-12-05 18:14:15.5 UTC", "2026-12-05T18:14:15.500000+00:00"),
    ],
)
def test_moments_need_a_zone_and_mean_one_instant(text: str, expected: str) -> None:
    assert parse_moment(text).astimezone(UTC).isoformat() == expected


@pytest.mark.parametrize("text", ["2026-12-06 03:14:15", "yesterday", "2026-12-06T03:14:15+09:00 JST"])
def test_moments_without_a_zone_or_unreadable_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_moment(text)
