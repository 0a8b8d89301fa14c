"""``wal push-daemon`` beside ``archive_command = 'wal push %p --spool DIR'``, against real PostgreSQL:
every segment archived and restorable under load, a SIGKILLed daemon costs nothing (the front
pushes), SIGTERM finishes cleanly, and a record never stands in for bytes the repository lacks."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.walarchive import archived_names, fetch
from backup.walasync import lock_spool
from backup.walseq import gaps
from backup.walspool import daemon_alive, write_record
from storage.local import LocalBackend
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import PASSWORD, Cli
from tests.servers.postgres import _as_owner, _bin

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env, key_file=True) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, v text)")
        spool = made.base / "spool"
        made.sql(f"ALTER SYSTEM SET archive_command = '{made.script} push %p --spool {spool}'")
        made.sql("SELECT pg_reload_conf()")
        yield made


def _daemon(site: WalSite, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A started daemon that holds the spool's lock: a segment switched before that would be
    pushed by the front alone, and the daemon would have nothing to do."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "wal", "push-daemon", "--system", SYSTEM, "--json",
         "--pg-data", str(site.cluster.datadir), "--spool", str(site.base / "spool")],
        env=env or site.relay.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not daemon_alive(site.base / "spool"):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    return proc


def _switch(site: WalSite) -> str:
    site.sql("INSERT INTO juki (v) SELECT md5(g::text) FROM generate_series(1, 200) g")
    return str(site.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0])


def _archived(site: WalSite, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = site.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
        if last is not None and last >= name:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} not archived; archiver at {last}")


def _pgbench(site: WalSite, seconds: int) -> subprocess.Popen[bytes]:
    owner = site.cluster.owner
    server = ["-h", "127.0.0.1", "-p", str(site.cluster.port), "-U", "postgres", "postgres"]
    subprocess.run(_as_owner([_bin("pgbench"), "-i", "-s", "1", "-q", *server], owner), check=True, capture_output=True)
    return subprocess.Popen(
        _as_owner([_bin("pgbench"), "-T", str(seconds), "-c", "2", "-R", "200", *server], owner),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _check_restorable(site: WalSite, first: str, last: str) -> list[str]:
    """Every segment from ``first`` to ``last`` archived, authenticated, and the server's own bytes."""
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        names = sorted(n for n in archived_names(repo, SYSTEM) if first <= n <= last)
        assert names[0] == first and names[-1] == last and not gaps(names), names
        for name in names:
            found, data = fetch(repo, SYSTEM, name)
            assert hashlib.sha256(data).hexdigest() == found.sha256
            local = site.cluster.datadir / "pg_wal" / name
            if local.exists():  # not yet recycled: exactly what the server wrote
                assert local.read_bytes() == data
    return names


def test_under_load_the_daemon_archives_every_segment_and_the_front_answers_from_its_records(site: WalSite) -> None:
    daemon = _daemon(site)
    # fronts that fall back to pushing themselves fail without a configuration: every segment
    # archived below was answered from the daemon's record
    site.relay.extra = {"BCPCTL_CONFIG": str(site.base / "no-such.yaml")}
    first = _switch(site)
    load = _pgbench(site, 8)
    names = [_switch(site)]
    while load.poll() is None:
        time.sleep(0.5)
        names.append(_switch(site))
    last = _switch(site)
    _archived(site, last)
    assert site.sql("SELECT failed_count FROM pg_stat_archiver")[0][0] == 0
    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    report = json.loads(out)
    assert report["archived"] >= len(names) // 2 and report["failed"] == 0
    archived = _check_restorable(site, first, last)
    assert len(archived) >= len(names) + 2
    spool = site.base / "spool"
    assert not daemon_alive(spool)
    assert len(list(spool.glob("*.archived"))) <= 2  # consumed by the fronts or pruned, not piling up


def test_a_sigkilled_daemon_loses_nothing_and_the_front_keeps_archiving(site: WalSite) -> None:
    # the failpoint SIGKILLs the daemon with half an object written under its temporary name
    daemon = _daemon(site, dict(site.relay.env, BCPCTL_FAILPOINTS="storage.save.mid-object"))
    first = _switch(site)
    assert daemon.wait(timeout=60) == -signal.SIGKILL
    last = _switch(site)
    _switch(site)
    _archived(site, last)  # the fronts did it: a dead daemon holds no lock, so nobody waits for it
    _check_restorable(site, first, last)
    # a daemon started again picks up where things are, beside fronts that answer from its records
    daemon = _daemon(site)
    again = _switch(site)
    _archived(site, again)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    _check_restorable(site, first, again)


def test_a_second_daemon_on_the_same_spool_is_refused(site: WalSite, cli: Cli) -> None:
    daemon = _daemon(site)
    try:
        second = cli("wal", "push-daemon", "--system", SYSTEM, "--pg-data", str(site.cluster.datadir),
                     "--spool", str(site.base / "spool"), env={"BCPCTL_CONFIG": str(site.config)})  # fmt: skip
        assert second.returncode == 2 and "another wal push-daemon" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


@pytest.mark.parametrize("forgery", ["other-bytes", "other-system"])
def test_a_forged_record_does_not_stand_for_bytes_the_repository_lacks(
    site: WalSite, tmp_path: Path, forgery: str
) -> None:
    """The record names a SHA-256 and an object of this system: a record of other bytes, or of
    another system's object, is ignored and the front pushes (the repository then holds it)."""
    spool = site.base / "spool"
    spool.mkdir()
    wal = tmp_path / "000000010000000000000042"
    wal.write_bytes(b"\x07" * 16384)
    digest = hashlib.sha256(b"forged" if forgery == "other-bytes" else wal.read_bytes()).hexdigest()
    owner = "other-system" if forgery == "other-system" else SYSTEM
    write_record(spool, wal.name, digest, f"wal/{owner}/{wal.name}/" + "0" * 64)
    env = {"BCPCTL_CONFIG": str(site.config)}
    done = Cli(site.relay.env)("wal", "push", str(wal), "--system", SYSTEM, "--spool", str(spool), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["already_archived"] is False  # pushed for real, not answered from the record
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        assert fetch(repo, SYSTEM, wal.name)[1] == wal.read_bytes()


def test_a_daemon_that_stays_behind_is_waited_for_only_wait_seconds(site: WalSite, tmp_path: Path) -> None:
    """A daemon alive but not pushing (stuck, or far behind): the front waits ``--wait`` seconds
    for a record, then pushes the segment itself and exits 0 only once the repository holds it."""
    spool = site.base / "spool"
    lock = lock_spool(spool)  # this test process stands for a daemon that never pushes
    try:
        wal = tmp_path / "000000010000000000000042"
        wal.write_bytes(b"\x05" * 16384)
        started = time.monotonic()
        done = Cli(site.relay.env)("wal", "push", str(wal), "--system", SYSTEM, "--spool", str(spool), "--wait", "2",
                                   "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started >= 2 and json.loads(done.stdout)["already_archived"] is False
    finally:
        os.close(lock)
    with open_repository(LocalBackend(site.repo), PASSWORD, sync=False) as repo:
        assert fetch(repo, SYSTEM, wal.name)[1] == wal.read_bytes()
