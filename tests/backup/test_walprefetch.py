"""``wal get --prefetch N --spool DIR``: one repository unlock serves the next N segments, with
exactly the archived bytes, and the spool never stands in for the archive's authority."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backup.test_wal import _archived, _names, _switch
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import Cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), v text)")
        yield made


def test_one_unlock_prefetches_the_next_segments_and_they_are_served_without_the_key(
    site: WalSite, tmp_path: Path
) -> None:
    cli = Cli(site.relay.env)
    names = [_switch(site) for _ in range(4)]
    _archived(site, names[-1])
    originals = {n: (site.cluster.datadir / "pg_wal" / n).read_bytes() for n in names}
    spool = tmp_path / "spool"
    first = cli("wal", "get", names[0], str(tmp_path / "first"), "--system", SYSTEM, "--prefetch", "2",
                "--spool", str(spool))  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "first").read_bytes() == originals[names[0]]
    assert sorted(p.name for p in spool.iterdir()) == names[1:3]  # the next two, nothing else
    # the key is gone now (a wrong password): only what the spool holds can still be served
    (site.base / "password").write_text("not the password")
    for name in names[1:3]:
        got = cli("wal", "get", name, str(tmp_path / name), "--system", SYSTEM, "--spool", str(spool))
        assert got.returncode == 0, got.stderr
        assert (tmp_path / name).read_bytes() == originals[name]
    assert list(spool.iterdir()) == []  # each spooled file is handed over once
    missing = cli("wal", "get", names[3], str(tmp_path / "last"), "--system", SYSTEM, "--spool", str(spool))
    assert missing.returncode == 3 and not (tmp_path / "last").exists()  # not spooled: the archive decides


def test_prefetch_without_a_spool_is_refused(site: WalSite, tmp_path: Path) -> None:
    cli = Cli(site.relay.env)
    got = cli("wal", "get", "000000010000000000000001", str(tmp_path / "x"), "--system", SYSTEM, "--prefetch", "4")
    assert got.returncode == 2 and "--spool" in got.stderr and not (tmp_path / "x").exists()


def test_one_unlock_archives_the_ready_segments_ahead_and_only_their_very_bytes_are_acknowledged(
    site: WalSite, tmp_path: Path
) -> None:
    cli = Cli(site.relay.env)
    real = _switch(site)
    _archived(site, real)
    data = (site.cluster.datadir / "pg_wal" / real).read_bytes()
    # a backlog PostgreSQL has not archived yet: three complete segments marked ready
    pg_wal = tmp_path / "pg_wal"
    (pg_wal / "archive_status").mkdir(parents=True)
    names = [f"00000009000000000000000{i}" for i in (1, 2, 3)]
    for i, name in enumerate(names):
        (pg_wal / name).write_bytes(data[:-1] + bytes([i]))
        (pg_wal / "archive_status" / f"{name}.ready").touch()
    spool = tmp_path / "spool"
    first = cli("wal", "push", str(pg_wal / names[0]), "--system", SYSTEM, "--ahead", "1", "--spool", str(spool))
    assert first.returncode == 0, first.stderr
    archived = _names(site)
    assert names[0] in archived and names[1] in archived and names[2] not in archived  # only N ahead
    (site.base / "password").write_text("not the password")  # no unlock possible from here on
    # other bytes under the recorded name are never acknowledged from the record
    (pg_wal / names[1]).write_bytes(data)
    tampered = cli("wal", "push", str(pg_wal / names[1]), "--system", SYSTEM, "--spool", str(spool))
    assert tampered.returncode != 0
    (pg_wal / names[1]).write_bytes(data[:-1] + bytes([1]))
    again = cli("wal", "push", str(pg_wal / names[1]), "--system", SYSTEM, "--spool", str(spool))
    assert again.returncode == 0, again.stderr  # the very bytes archived ahead: acknowledged without the key
    not_ahead = cli("wal", "push", str(pg_wal / names[2]), "--system", SYSTEM, "--spool", str(spool))
    assert not_ahead.returncode == 3  # never archived: only the repository can say so, and it is locked


def test_ahead_without_a_spool_is_refused(site: WalSite, tmp_path: Path) -> None:
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(b"x")
    got = Cli(site.relay.env)("wal", "push", str(segment), "--system", SYSTEM, "--ahead", "4")
    assert got.returncode == 2 and "--spool" in got.stderr
